//! [`PoolConfig`] and its policies. The policies are plain data: build them with
//! `..Default::default()`.

use std::path::PathBuf;
use std::time::Duration;

use offload_balance::Algorithm;
use offload_process::{ResourceLimits, Runtimes};

/// What the pool's workers run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerKind {
    /// The Node runner: jobs are `.js`/`.mjs`/`.cjs` files in the jobs folder.
    Node,
    /// The Python runner: jobs are `.py` files in the jobs folder.
    Python,
    /// A native worker (built with the Rust SDK): jobs are its handler names.
    Program(PathBuf),
}

/// What `run` does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backpressure {
    /// Wait for room.
    #[default]
    Wait,
    /// Fail at once with [`PoolError::QueueFull`](crate::PoolError::QueueFull).
    FailFast,
}

/// Retries of a job whose attempt ended badly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 3).
    pub max_attempts: u32,
    /// Delay before the first retry (default 50 ms); doubles each retry.
    pub base: Duration,
    /// Largest delay (default 10 s).
    pub max: Duration,
    /// Random spread, as a fraction of the delay (default 0.2: ±20 %).
    pub jitter: f64,
    /// Also retry jobs that failed by themselves (threw); by default only deaths, timeouts
    /// and protocol errors are retried.
    pub on_error: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base: Duration::from_millis(50),
            max: Duration::from_secs(10),
            jitter: 0.2,
            on_error: false,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based), with jitter from `unit` in 0..1.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let exp = self.base.saturating_mul(
            1u32.checked_shl(retry.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        let capped = exp.min(self.max);
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let unit = if unit.is_finite() { unit } else { 0.5 };
        let spread = jitter * (unit.clamp(0.0, 1.0) * 2.0 - 1.0);
        // Never panics: an unrepresentable product saturates to the cap.
        Duration::try_from_secs_f64(capped.as_secs_f64() * (1.0 + spread).max(0.0))
            .unwrap_or(capped)
    }
}

/// Respawning dead workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Delay before the first respawn after a failure (default 100 ms); doubles each time.
    pub base: Duration,
    /// Largest delay (default 15 s, PM2's cap).
    pub max: Duration,
    /// More unexpected exits than this within `interval` marks the pool degraded (default 10).
    pub max_restarts: u32,
    /// The window for `max_restarts` (default 60 s).
    pub interval: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(100),
            max: Duration::from_secs(15),
            max_restarts: 10,
            interval: Duration::from_secs(60),
        }
    }
}

/// When a worker is replaced although healthy (to contain leaks). The replacement starts before
/// the old worker retires; a running job is never killed for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecyclePolicy {
    /// After this many jobs.
    pub after_jobs: Option<u64>,
    /// Above this resident set size, in bytes (checked at each health sample).
    pub max_rss: Option<u64>,
    /// After this age.
    pub max_age: Option<Duration>,
    /// Above this heap in use, in bytes (as the worker's last `pong` reported it; workers that
    /// report no heap are never recycled for it).
    pub max_heap: Option<u64>,
    /// Above this CPU use of the worker's process tree, percent of one core, for
    /// `cpu_samples` health samples in a row (at most 100 per core: 1..=10,000).
    pub max_cpu: Option<u32>,
    /// Consecutive samples above `max_cpu` before recycling (0 counts as 1; at most 1,000).
    pub cpu_samples: u32,
}

/// The shortest `ping_interval` and `ping_timeout` (a worker's event loop is not a real-time
/// system).
pub const MIN_PING: Duration = Duration::from_millis(10);

/// The most workers one pool may have ([`PoolConfig::max`], [`ChildPool::resize`]): each is a
/// process, and the pool keeps a slot per possible worker, so an unbounded count (a
/// `resize(1e9)`) would take the host's memory before the OS refused the processes.
///
/// [`ChildPool::resize`]: crate::ChildPool::resize
pub const MAX_WORKERS: usize = 1024;

/// The default [`PoolConfig::soft_kill_busy_limit`]: 60 s.
pub const DEFAULT_SOFT_KILL_BUSY_LIMIT: Duration = Duration::from_secs(60);

/// Everything about a pool.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolConfig {
    /// A name for logs and events.
    pub name: String,
    /// What the workers run.
    pub worker: WorkerKind,
    /// Extra arguments for the worker program.
    pub args: Vec<String>,
    /// Extra environment variables for the workers.
    pub env: Vec<(String, String)>,
    /// Which of this process's environment variables workers inherit (default: all; see
    /// [`offload_process::EnvPolicy`]).
    pub env_policy: offload_process::EnvPolicy,
    /// The jobs folder.
    pub jobs_dir: PathBuf,
    /// Which `node` and `python3`.
    pub runtimes: Runtimes,
    /// Workers kept alive (default 1).
    pub min: usize,
    /// Workers at most (default 4, at most [`MAX_WORKERS`]); enforced.
    pub max: usize,
    /// Jobs per worker at once (default 1).
    pub concurrency: u32,
    /// How a worker is chosen among those with free capacity (default `polling`).
    pub algorithm: Algorithm,
    /// With `concurrency` above 1: a worker that has a job in flight gets another only while
    /// at least `min` workers are ready (default false). While a worker starts (a restart, a
    /// recycling), jobs then wait in the pool's queue for it instead of queueing behind a busy
    /// worker's job (Python's executor uses it with `min == max`).
    pub spread_first: bool,
    /// Weights by worker index (the k-th worker keeps weight `weights[k]` across restarts;
    /// default 1).
    pub weights: Vec<f64>,
    /// Jobs waiting in the queue at most (default 10,000).
    pub queue_bound: usize,
    /// What `run` does when the queue is full.
    pub backpressure: Backpressure,
    /// Default per-attempt timeout of a job.
    pub job_timeout: Option<Duration>,
    /// After a timeout's `cancel`, how long before the worker is killed (default 2 s).
    pub cancel_grace: Duration,
    /// Retries.
    pub retry: RetryPolicy,
    /// Respawns.
    pub restart: RestartPolicy,
    /// Recycling.
    pub recycle: RecyclePolicy,
    /// Workers idle this long are retired down to `min`.
    pub idle_timeout: Option<Duration>,
    /// How long `start` waits for `min` workers to be ready (default 30 s).
    pub start_timeout: Duration,
    /// How often RSS and CPU are sampled from /proc (default 1 s).
    pub health_interval: Duration,
    /// How often an idle worker that announced the `ping` capability is pinged (default 5 s;
    /// `None` never pings). Checked at each health sample, so at least `health_interval`.
    pub ping_interval: Option<Duration>,
    /// How long a `pong` may take before the worker is killed and replaced as unresponsive
    /// (default 10 s).
    pub ping_timeout: Duration,
    /// A job that was in flight on this many dying workers is poison and fails (default 3).
    pub poison_after: u32,
    /// The first signal of a kill (default SIGTERM).
    pub kill_signal: i32,
    /// How long a stopping worker gets before SIGKILL (default 5 s).
    pub kill_grace: Duration,
    /// How long a soft kill ([`KillMode::Soft`](crate::KillMode::Soft)) waits for a worker
    /// that declared `busy()` to call `ready()` before it hard-kills it (default 60 s;
    /// [`PoolEvent::SoftKillEscalated`](crate::PoolEvent::SoftKillEscalated)).
    pub soft_kill_busy_limit: Duration,
    /// setrlimit limits of each worker.
    pub limits: ResourceLimits,
    /// The largest frame (default 16 MiB).
    pub max_frame: usize,
    /// Install the registry's SIGINT/SIGTERM listener (default true).
    pub handle_signals: bool,
    /// Give each worker a cgroup of its own where a writable cgroup v2 hierarchy exists
    /// (default true): what a job leaves behind is then found however it hides (`setsid`, a
    /// scrubbed environment). Off, or without cgroups, the process group and the environment
    /// markers are used. See `docs/design/pool.md`, "Containment".
    pub cgroups: bool,
    /// A reliable sink of every worker's stdout and stderr lines
    /// ([`offload_process::ProcessOptions::log_sink`]; each line names its worker's pid). The
    /// workers block on their own output while it is full; a job's answer is reported only
    /// once the lines it printed before it are in the sink. Default none: lines go to the
    /// workers' event streams only.
    pub log_sink: Option<tokio::sync::mpsc::Sender<offload_process::OutputItem>>,
    /// The largest number of descriptors one run may carry (default 16; see
    /// [`ChildPool::run_with_fds`](crate::ChildPool::run_with_fds)).
    pub max_fds_per_run: usize,
    /// How long a worker has to acknowledge each descriptor passed (default 5 s); one that
    /// misses it fails that run and gets no more descriptors.
    pub fd_ack_timeout: Duration,
    /// Read the workers' channels on the host's own thread (see [`HostReader`]); default none:
    /// the pool's runtime reads them. Not used with a [`log_sink`](Self::log_sink).
    pub host_reader: Option<HostReader>,
    /// Backpressure for each worker's progress, events and log lines (see
    /// [`offload_process::EventFlow`]; at most
    /// [`MAX_EVENT_BACKPRESSURE`](offload_process::MAX_EVENT_BACKPRESSURE)): at most this many
    /// on their way to listeners; past it the worker's channel is not read until listeners
    /// took some, so nothing is dropped. Every subscriber then must keep reading: the
    /// receivers of [`JobHandle::events`](crate::JobHandle::events) (whose capacity must stay
    /// above the bound), [`ChildPool::events`](crate::ChildPool::events) and the workers'
    /// streams. Default none: a listener more than a ring behind loses the oldest.
    pub event_backpressure: Option<usize>,
}

/// Given each new worker's channel, to read on the host's own thread (the Node addon watches
/// it from the JavaScript thread's event loop and calls
/// [`HostChannel::read_ready`](offload_process::HostChannel::read_ready) when it is readable):
/// a job's answer then completes on that thread, without waking the pool's runtime, and a
/// submission from that thread is written there too. The pool still decides every timeout on
/// what the worker sent: before one, the worker's process reads the channel itself.
#[derive(Clone)]
pub struct HostReader(
    pub std::sync::Arc<dyn Fn(std::sync::Arc<offload_process::HostChannel>) + Send + Sync>,
);

impl std::fmt::Debug for HostReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostReader")
    }
}

impl PoolConfig {
    /// The host reader in use: none with a log sink (the actor must drain the output pumps
    /// before it reports an answer).
    pub(crate) fn active_host_reader(&self) -> Option<&HostReader> {
        self.host_reader
            .as_ref()
            .filter(|_| self.log_sink.is_none())
    }

    /// A pool of `worker`s for the jobs in `jobs_dir`, with the defaults.
    pub fn new(worker: WorkerKind, jobs_dir: impl Into<PathBuf>) -> Self {
        Self {
            name: "default".into(),
            worker,
            args: Vec::new(),
            env: Vec::new(),
            env_policy: offload_process::EnvPolicy::Inherit,
            jobs_dir: jobs_dir.into(),
            runtimes: Runtimes::default(),
            min: 1,
            max: 4,
            concurrency: 1,
            spread_first: false,
            algorithm: Algorithm::Polling,
            weights: Vec::new(),
            queue_bound: 10_000,
            backpressure: Backpressure::Wait,
            job_timeout: None,
            cancel_grace: Duration::from_secs(2),
            retry: RetryPolicy::default(),
            restart: RestartPolicy::default(),
            recycle: RecyclePolicy::default(),
            idle_timeout: None,
            start_timeout: Duration::from_secs(30),
            health_interval: Duration::from_secs(1),
            ping_interval: Some(Duration::from_secs(5)),
            ping_timeout: Duration::from_secs(10),
            poison_after: 3,
            kill_signal: libc::SIGTERM,
            kill_grace: Duration::from_secs(5),
            soft_kill_busy_limit: DEFAULT_SOFT_KILL_BUSY_LIMIT,
            limits: ResourceLimits::default(),
            max_frame: offload_protocol::DEFAULT_MAX_FRAME,
            handle_signals: true,
            cgroups: true,
            log_sink: None,
            max_fds_per_run: offload_process::DEFAULT_MAX_FDS_PER_RUN,
            fd_ack_timeout: offload_process::DEFAULT_FD_ACK_TIMEOUT,
            host_reader: None,
            event_backpressure: None,
        }
    }

    /// At most `limit` events of each worker on their way to listeners (see
    /// [`event_backpressure`](Self::event_backpressure)).
    #[must_use]
    pub fn event_backpressure(mut self, limit: usize) -> Self {
        self.event_backpressure = Some(limit);
        self
    }

    /// Sets `min` and `max`.
    #[must_use]
    pub fn size(mut self, min: usize, max: usize) -> Self {
        self.min = min;
        self.max = max;
        self
    }

    /// Sets the per-worker concurrency.
    #[must_use]
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = n;
        self
    }

    /// Sets the algorithm.
    #[must_use]
    pub fn algorithm(mut self, a: Algorithm) -> Self {
        self.algorithm = a;
        self
    }

    /// Sets the default job timeout.
    #[must_use]
    pub fn job_timeout(mut self, t: Duration) -> Self {
        self.job_timeout = Some(t);
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn retry(mut self, r: RetryPolicy) -> Self {
        self.retry = r;
        self
    }

    /// Sets the recycle policy.
    #[must_use]
    pub fn recycle(mut self, r: RecyclePolicy) -> Self {
        self.recycle = r;
        self
    }

    /// Sets the queue bound and what `run` does when it is reached.
    #[must_use]
    pub fn queue(mut self, bound: usize, backpressure: Backpressure) -> Self {
        self.queue_bound = bound;
        self.backpressure = backpressure;
        self
    }

    /// Whether to give each worker a cgroup (where cgroup v2 is writable).
    #[must_use]
    pub fn cgroups(mut self, yes: bool) -> Self {
        self.cgroups = yes;
        self
    }

    /// Whether to install the registry's signal listener.
    #[must_use]
    pub fn handle_signals(mut self, yes: bool) -> Self {
        self.handle_signals = yes;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), crate::StartError> {
        let bad = |why: String| Err(crate::StartError::Config(why));
        if self.max == 0 {
            return bad("max must be at least 1".into());
        }
        if self.max > MAX_WORKERS {
            return bad(format!(
                "max is {}: a pool has at most {MAX_WORKERS} workers (MAX_WORKERS)",
                self.max
            ));
        }
        if self.min > self.max {
            return bad(format!("min ({}) is above max ({})", self.min, self.max));
        }
        for (name, value) in &self.env {
            if let Err(e) = offload_process::check_env_var(name, value) {
                return bad(format!("env: {e}"));
            }
        }
        if self.concurrency == 0 {
            return bad("concurrency must be at least 1".into());
        }
        if let Some(n) = self.event_backpressure {
            let most = offload_process::MAX_EVENT_BACKPRESSURE;
            if n == 0 || n > most {
                return bad(format!(
                    "event_backpressure is {n}: it must be 1 to {most} (MAX_EVENT_BACKPRESSURE)"
                ));
            }
        }
        if self.queue_bound == 0 {
            return bad("queue_bound must be at least 1".into());
        }
        if self.algorithm == Algorithm::Specify {
            return bad(
                "`specify` needs a key for every job; use run_bound for affinity \
                        and another algorithm for the pool"
                    .into(),
            );
        }
        if let Some(w) = self.weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
            return bad(format!("invalid weight {w}: weights are finite and >= 0"));
        }
        if !self.retry.jitter.is_finite() {
            return bad("retry.jitter must be a finite number".into());
        }
        if let Some(c) = self.recycle.max_cpu {
            if !(1..=10_000).contains(&c) {
                return bad(format!(
                    "recycle.max_cpu is {c}: it must be within 1..=10000 (percent)"
                ));
            }
        }
        if self.recycle.cpu_samples > 1_000 {
            return bad(format!(
                "recycle.cpu_samples is {}: at most 1000",
                self.recycle.cpu_samples
            ));
        }
        if self.ping_timeout < MIN_PING {
            return bad(format!(
                "ping_timeout is {:?}: at least {MIN_PING:?}",
                self.ping_timeout
            ));
        }
        if let Some(p) = self.ping_interval.filter(|p| *p < MIN_PING) {
            return bad(format!("ping_interval is {p:?}: at least {MIN_PING:?}"));
        }
        for (field, d) in self.durations() {
            if let Err(e) = offload_process::timer::check(field, d) {
                return bad(e.to_string());
            }
        }
        Ok(())
    }

    /// Every duration option, by name (each is at most
    /// [`MAX_DURATION`](offload_process::timer::MAX_DURATION)).
    fn durations(&self) -> Vec<(&'static str, Duration)> {
        let mut all = vec![
            ("cancel_grace", self.cancel_grace),
            ("kill_grace", self.kill_grace),
            ("soft_kill_busy_limit", self.soft_kill_busy_limit),
            ("start_timeout", self.start_timeout),
            ("health_interval", self.health_interval),
            ("ping_timeout", self.ping_timeout),
            ("retry.base", self.retry.base),
            ("retry.max", self.retry.max),
            ("restart.base", self.restart.base),
            ("restart.max", self.restart.max),
            ("restart.interval", self.restart.interval),
        ];
        let optional = [
            ("job_timeout", self.job_timeout),
            ("idle_timeout", self.idle_timeout),
            ("recycle.max_age", self.recycle.max_age),
            ("ping_interval", self.ping_interval),
        ];
        all.extend(optional.into_iter().filter_map(|(f, d)| Some((f, d?))));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_cap() {
        let r = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        assert_eq!(r.delay(1, 0.5), Duration::from_millis(50));
        assert_eq!(r.delay(2, 0.5), Duration::from_millis(100));
        assert_eq!(r.delay(4, 0.5), Duration::from_millis(400));
        assert_eq!(r.delay(40, 0.5), Duration::from_secs(10));
        let j = RetryPolicy::default();
        assert_eq!(j.delay(1, 0.0), Duration::from_millis(40));
        assert_eq!(j.delay(1, 1.0), Duration::from_millis(60));
    }

    #[test]
    fn bad_configs_are_refused() {
        let ok = PoolConfig::new(WorkerKind::Node, "jobs");
        assert!(ok.validate().is_ok());
        assert!(ok.clone().size(3, 2).validate().is_err());
        assert!(ok.clone().size(0, 0).validate().is_err());
        assert!(ok.clone().concurrency(0).validate().is_err());
        assert!(ok.clone().algorithm(Algorithm::Specify).validate().is_err());
    }

    #[test]
    fn absurd_durations_are_refused_naming_the_field_and_the_limit() {
        let ok = PoolConfig::new(WorkerKind::Node, "jobs");
        let huge = Duration::from_millis(100_000_000_000);
        let e = ok.clone().job_timeout(huge).validate().unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("job_timeout") && text.contains("31536000s"),
            "{text}"
        );
        let mut c = ok.clone();
        c.restart.max = Duration::MAX;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("restart.max"));
        let mut c = ok.clone();
        c.retry.jitter = f64::NAN;
        assert!(c.validate().is_err());
        assert!(ok
            .job_timeout(offload_process::timer::MAX_DURATION)
            .validate()
            .is_ok());
    }

    #[test]
    fn retry_delays_never_panic() {
        let r = RetryPolicy {
            base: Duration::MAX,
            max: Duration::MAX,
            jitter: 1.0,
            ..RetryPolicy::default()
        };
        assert_eq!(r.delay(u32::MAX, 1.0), Duration::MAX);
        let r = RetryPolicy {
            jitter: f64::NAN,
            ..RetryPolicy::default()
        };
        assert_eq!(r.delay(1, f64::INFINITY), Duration::from_millis(50));
    }
}
