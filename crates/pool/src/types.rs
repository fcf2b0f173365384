//! What a pool reports: job results, events, health.

use std::time::{Duration, SystemTime};

use offload_process::{Credit, Outcome, Receiver};
use serde::Serialize;
use serde_json::Value;

/// A job's id in its pool.
pub type JobId = u64;

/// One attempt of a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Attempt {
    /// The worker that ran it.
    pub pid: u32,
    /// When it was sent to the worker.
    pub started: SystemTime,
    /// When it ended.
    pub ended: SystemTime,
    /// How it ended.
    pub outcome: Outcome,
}

/// The end of a job: its final outcome and every attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct JobResult {
    /// The job.
    pub id: JobId,
    /// The final outcome.
    pub outcome: Outcome,
    /// Every attempt, in order (empty when it never reached a worker).
    pub attempts: Vec<Attempt>,
}

/// Something a job did while running.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobEvent {
    /// It was sent to a worker.
    Started {
        /// The job.
        id: JobId,
        /// The worker.
        pid: u32,
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// It reported progress.
    Progress {
        /// The job.
        id: JobId,
        /// The worker.
        pid: u32,
        /// The value.
        data: Value,
        /// Its credit, with backpressure (see [`PoolConfig::event_backpressure`](crate::PoolConfig::event_backpressure)).
        #[serde(skip)]
        credit: Credit,
    },
    /// It emitted an event.
    Event {
        /// The job.
        id: JobId,
        /// The worker.
        pid: u32,
        /// The event's name.
        name: String,
        /// Its data.
        data: Value,
        /// Who it is for.
        receiver: Receiver,
        /// Its credit, with backpressure (see [`PoolConfig::event_backpressure`](crate::PoolConfig::event_backpressure)).
        #[serde(skip)]
        credit: Credit,
    },
    /// An attempt ended badly; another follows after `delay`.
    Retrying {
        /// The job.
        id: JobId,
        /// How the attempt ended.
        outcome: Outcome,
        /// The wait before the next attempt.
        delay: Duration,
    },
    /// It ended.
    Finished {
        /// The job.
        id: JobId,
        /// How.
        outcome: Outcome,
    },
}

impl JobEvent {
    /// The job the event is about.
    pub fn job_id(&self) -> JobId {
        match self {
            Self::Started { id, .. }
            | Self::Progress { id, .. }
            | Self::Event { id, .. }
            | Self::Retrying { id, .. }
            | Self::Finished { id, .. } => *id,
        }
    }
}

/// Why a healthy worker was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecycleReason {
    /// It ran `after_jobs` jobs.
    Jobs,
    /// Its RSS passed `max_rss`.
    Memory,
    /// It reached `max_age`.
    Age,
    /// It was idle past `idle_timeout` and the pool is above `min`.
    Idle,
    /// `resize` asked for fewer workers.
    Resize,
    /// Job files changed (hot reload).
    Reload,
    /// Its heap (as its last `pong` reported) passed `max_heap`.
    Heap,
    /// Its process tree's CPU stayed above `max_cpu` for `cpu_samples` samples in a row.
    Cpu,
}

/// Why a worker was killed on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum KillMode {
    /// Soft kill: the worker gets `shutdown` (no new jobs; its running jobs and its shutdown
    /// hook may finish within `grace`), then `SIGKILL` if it is still there. A worker that
    /// declared `busy()` gets it only once it calls `ready()`, or is hard-killed after
    /// [`PoolConfig::soft_kill_busy_limit`](crate::PoolConfig::soft_kill_busy_limit).
    Soft {
        /// How long it may take.
        grace: Duration,
    },
    /// Hard kill: the worker gets the `kill` notice (its hard-kill hook runs), then `SIGKILL`
    /// after `grace`; its running jobs end with the kill (retried while attempts remain).
    Hard {
        /// How long between the notice and `SIGKILL`.
        grace: Duration,
    },
}

impl KillMode {
    /// The grace of either mode.
    pub fn grace(&self) -> Duration {
        match self {
            Self::Soft { grace } | Self::Hard { grace } => *grace,
        }
    }
}

/// Why a soft kill became a hard kill ([`PoolEvent::SoftKillEscalated`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EscalationReason {
    /// The worker had declared `busy()` and did not call `ready()` within
    /// [`PoolConfig::soft_kill_busy_limit`](crate::PoolConfig::soft_kill_busy_limit).
    BusyPastLimit {
        /// The limit it passed.
        limit: Duration,
    },
}

/// How [`ChildPool::kill_all`](crate::ChildPool::kill_all) goes through the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KillOrder {
    /// Every worker at once.
    #[default]
    Parallel,
    /// One worker after the other, by index: the next is told once the previous is gone.
    Sequence,
}

/// Pool-level events.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PoolEvent {
    /// All `min` workers are ready (once, at start).
    Online {
        /// How many.
        workers: usize,
    },
    /// A worker process was started.
    WorkerSpawned {
        /// Its pid.
        pid: u32,
        /// Its index (its weight's position).
        index: usize,
    },
    /// A worker completed its handshake.
    WorkerReady {
        /// Its pid.
        pid: u32,
    },
    /// A worker is gone.
    WorkerExited {
        /// Its pid.
        pid: u32,
        /// How it ended.
        outcome: Outcome,
        /// Whether the pool meant it to stop (recycling, scaling, shutdown).
        expected: bool,
    },
    /// A worker is being replaced although healthy.
    WorkerRecycled {
        /// Its pid.
        pid: u32,
        /// Why.
        reason: RecycleReason,
    },
    /// A worker did not answer a `ping` within `ping_timeout`: it is killed and replaced (its
    /// exit follows as `WorkerExited`, not expected).
    WorkerUnresponsive {
        /// Its pid.
        pid: u32,
        /// How long the pool waited for the `pong`.
        waited: Duration,
    },
    /// A worker is being killed on request ([`ChildPool::kill_worker`](crate::ChildPool::kill_worker),
    /// [`ChildPool::kill_all`](crate::ChildPool::kill_all)).
    WorkerKilled {
        /// Its pid.
        pid: u32,
        /// How.
        mode: KillMode,
    },
    /// A soft kill became a hard kill (a `WorkerKilled` with the hard mode follows).
    SoftKillEscalated {
        /// Its pid.
        pid: u32,
        /// Why.
        reason: EscalationReason,
    },
    /// Workers die too often: respawning slows to the restart policy's maximum delay.
    Degraded {
        /// Unexpected exits within the window.
        restarts: u32,
    },
    /// A worker stayed up for the whole window again.
    Recovered,
    /// The pool's actor panicked: its jobs failed with `SupervisorFailed`, its workers were
    /// killed, and it starts again after `delay`.
    SupervisorRestarted {
        /// Panics so far.
        panics: u64,
        /// The panic's message.
        message: String,
        /// The backoff before the restart.
        delay: Duration,
    },
    /// A job event (progress, events for `job`/`all`, retries, ends).
    Job(JobEvent),
}

/// A worker's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WorkerState {
    /// Started, no handshake yet.
    Starting,
    /// Taking jobs.
    Ready,
    /// Taking no new jobs; stops when its jobs are done (recycling, scaling).
    Draining,
    /// Told to stop (shutdown sent or killed).
    Stopping,
}

/// One worker's health, sampled from /proc.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct WorkerHealth {
    /// Its pid.
    pub pid: u32,
    /// Its index.
    pub index: usize,
    /// Its state.
    pub state: WorkerState,
    /// Resident set size of its whole process tree, bytes.
    pub rss: u64,
    /// CPU use of its process tree over the last sample interval, percent of one core.
    pub cpu: f64,
    /// Heap in use, bytes, from its last `pong` (`None` until one arrives or when its runtime
    /// does not report it).
    pub heap_used: Option<u64>,
    /// Heap reserved, bytes, from its last `pong`.
    pub heap_total: Option<u64>,
    /// Processes in its tree at the last sample (itself included).
    pub processes: usize,
    /// Jobs running now.
    pub in_flight: usize,
    /// Jobs answered.
    pub jobs_done: u64,
    /// Jobs that failed on it (answered with an error).
    pub failures: u64,
    /// Respawns of its index so far.
    pub restarts: u32,
    /// Time since it started.
    pub uptime: Duration,
    /// The last error a job reported on it.
    pub last_error: Option<String>,
}
