//! [`Runner`]: how a pool runs its jobs — resident workers (`isolation = "pool"`, a
//! [`ChildPool`]) or a fresh process per job (`isolation = "process"`, a [`ChildJob`]).
//!
//! This file is the only place that tells the two apart. The rest of the engine sees one
//! shape: [`Runner::launch`] starts an [`Attempt`], which gives a [`Stop`] (to cancel it),
//! [`RunEvents`] (its progress and events as [`RunEvent`]s) and its [`Outcome`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use offload_pool::{
    Algorithm, Canceller, ChildPool, JobEvent, JobHandle, PoolConfig, RecyclePolicy, RunOptions,
    WorkerKind,
};
use offload_process::{
    ChildJob, ChildJobConfig, ExecOptions, JobKind, JobProcess, Outcome, OutputItem, ProcessEvent,
    Stream,
};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, OwnedSemaphorePermit, Semaphore};

use super::log_writer::AttemptKey;
use super::logs::{self, JobLogs};
use super::EngineError;
use crate::config::{Isolation, PoolSection, ServeConfig};

/// How a pool runs its jobs.
pub(crate) enum Runner {
    /// Resident workers fed from the pool's queue, their lines in `log_sink`
    /// (`logs.rs`), `concurrency` jobs per worker.
    Pool {
        pool: ChildPool,
        log_sink: mpsc::Sender<OutputItem>,
        concurrency: usize,
    },
    /// A fresh process per job, at most `slots` at once.
    Process {
        jobs: ChildJob,
        slots: Arc<Semaphore>,
    },
}

impl Runner {
    /// Starts the runner of pool `section` (`kind` and `program` decided by the engine);
    /// `capacity` is how many jobs it may run at once (its pool queue holds four times that).
    pub(crate) async fn start(
        cfg: &ServeConfig,
        section: &PoolSection,
        kind: JobKind,
        program: Option<PathBuf>,
        capacity: usize,
        logs: &JobLogs,
    ) -> Result<Self, EngineError> {
        let name = &section.name;
        let min = section.min.unwrap_or(0);
        let max = section.max.unwrap_or(2).max(1);
        let concurrency = section.concurrency.unwrap_or(1).max(1);
        match section.isolation {
            Isolation::Process => Ok(Self::Process {
                jobs: ChildJob::new(
                    ChildJobConfig::with_jobs_dir(&cfg.jobs)
                        .handle_signals(false)
                        .env_policy(crate::job_env::policy(cfg)),
                ),
                slots: Arc::new(Semaphore::new(max)),
            }),
            Isolation::Pool => {
                let worker = match (kind, program) {
                    (JobKind::Node, _) => WorkerKind::Node,
                    (JobKind::Python, _) => WorkerKind::Python,
                    (_, Some(p)) => WorkerKind::Program(p),
                    (_, None) => {
                        return Err(EngineError::Invalid("a native pool needs a program".into()))
                    }
                };
                let mut pc = PoolConfig::new(worker, &cfg.jobs)
                    .size(min.min(max), max)
                    .concurrency(concurrency)
                    .handle_signals(false);
                pc.name.clone_from(name);
                pc.env_policy = crate::job_env::policy(cfg);
                let log_sink = logs.pool_sink();
                pc.log_sink = Some(log_sink.clone());
                if let Some(a) = &section.algorithm {
                    pc.algorithm = a
                        .parse::<Algorithm>()
                        .map_err(|e| EngineError::Invalid(format!("pool {name:?}: {e}")))?;
                }
                // The store owns retries (with backoff, durable): one attempt per claim.
                pc.retry.max_attempts = 1;
                pc.queue_bound = capacity.max(1) * 4;
                pc.recycle = RecyclePolicy {
                    after_jobs: section.recycle_after_jobs,
                    max_rss: section.max_rss_mb.map(|mb| mb.saturating_mul(1 << 20)),
                    max_age: section.max_age_s.map(Duration::from_secs),
                    max_heap: section.max_heap_mb.map(|mb| mb.saturating_mul(1 << 20)),
                    max_cpu: section.max_cpu_percent,
                    cpu_samples: section.cpu_samples.unwrap_or(1),
                };
                match section.ping_interval_ms {
                    Some(0) => pc.ping_interval = None,
                    Some(ms) => pc.ping_interval = Some(Duration::from_millis(ms)),
                    None => {}
                }
                if let Some(ms) = section.ping_timeout_ms {
                    pc.ping_timeout = Duration::from_millis(ms);
                }
                pc.idle_timeout = Some(Duration::from_secs(section.idle_timeout_s.unwrap_or(300)));
                let pool = ChildPool::start(pc).await.map_err(|e| {
                    EngineError::Internal(format!("pool {name:?} cannot start: {e}"))
                })?;
                Ok(Self::Pool {
                    pool,
                    log_sink,
                    concurrency: concurrency as usize,
                })
            }
        }
    }

    /// The resident pool, when the runner has one (resize, health, worker events).
    pub(crate) fn pool(&self) -> Option<&ChildPool> {
        match self {
            Self::Pool { pool, .. } => Some(pool),
            Self::Process { .. } => None,
        }
    }

    /// Starts attempt `key` of `job` (a process runner first waits for a free slot); its
    /// lines go to `logs`. `offered` goes to its worker (a pool's worker gets it with the run
    /// if it takes descriptors; a process runner closes it). `Err` is why the job cannot run
    /// at all (its text names files absolutely: the caller cleans it).
    pub(crate) async fn launch(
        &self,
        job: &str,
        params: Value,
        timeout: Option<Duration>,
        (logs, key): (&JobLogs, AttemptKey),
        offered: Option<std::os::fd::OwnedFd>,
    ) -> Result<Attempt, String> {
        match self {
            Self::Pool {
                pool,
                log_sink,
                concurrency,
            } => {
                // Attached on the pool's actor before the worker gets the run: the worker's
                // lines are the attempt's from its first one.
                let (logs, concurrency) = (logs.clone(), *concurrency);
                let mut opts = RunOptions::default()
                    .max_attempts(1)
                    .with_events()
                    .on_start(move |pid| logs.attach(pid, key, concurrency));
                if let Some(t) = timeout {
                    opts = opts.timeout(t);
                }
                let run = match offered {
                    Some(fd) => {
                        pool.run_with_fds(job, params, opts.offer_fds(), vec![fd])
                            .await
                    }
                    None => pool.run_with(job, params, opts).await,
                };
                let mut handle = run.map_err(|e| e.to_string())?;
                let stop = Stop::Pool(handle.canceller());
                let events = handle.events().map(RunEvents::Pool);
                Ok(Attempt {
                    stop,
                    events,
                    end: End::Pool(Some(handle)),
                    log_sink: Some(log_sink.clone()),
                })
            }
            Self::Process { jobs, slots } => {
                let Ok(permit) = Arc::clone(slots).acquire_owned().await else {
                    return Ok(Attempt {
                        stop: Stop::Nothing,
                        events: None,
                        end: End::Cancelled,
                        log_sink: None,
                    });
                };
                let (sink, lines) = mpsc::channel(logs::SINK_CAPACITY);
                let mut opts = ExecOptions::default().log_sink(sink);
                if let Some(t) = timeout {
                    opts = opts.timeout(t);
                }
                let process = jobs
                    .exec(job, params, opts)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Attempt {
                    stop: Stop::Process(process.clone()),
                    events: Some(RunEvents::Process {
                        events: process.events(),
                        lines: Some(lines),
                        exited: false,
                    }),
                    end: End::Process(process, permit),
                    log_sink: None,
                })
            }
        }
    }

    /// Replaces the resident workers (job files changed); a process runner starts fresh
    /// processes anyway.
    pub(crate) async fn recycle(&self, pool_name: &str) {
        if let Self::Pool { pool, .. } = self {
            tracing::info!(pool = %pool_name, "job files changed: replacing workers");
            if let Err(e) = pool.recycle_all().await {
                tracing::warn!(pool = %pool_name, error = %e, "cannot recycle");
            }
        }
    }

    /// Stops every worker: a pool gracefully within `deadline`, a process runner's processes
    /// at once. Runs as a task of its own, so that pools stop side by side.
    pub(crate) fn shutdown(&self, deadline: Duration) -> tokio::task::JoinHandle<()> {
        match self {
            Self::Pool { pool, .. } => {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let _ = pool.shutdown(deadline).await;
                })
            }
            Self::Process { jobs, .. } => {
                let jobs = jobs.clone();
                tokio::spawn(async move { jobs.kill_all().await })
            }
        }
    }
}

/// One running attempt of a job.
pub(crate) struct Attempt {
    stop: Stop,
    events: Option<RunEvents>,
    end: End,
    /// A pool attempt: the pool's log sink (for the barrier after its answer).
    log_sink: Option<mpsc::Sender<OutputItem>>,
}

/// What an attempt's end is read from.
enum End {
    /// Taken when its result is read.
    Pool(Option<JobHandle>),
    /// The process and its slot, held until the process ends.
    Process(JobProcess, OwnedSemaphorePermit),
    /// The runner stopped before the attempt could start.
    Cancelled,
}

impl Attempt {
    /// What stops it (once; later calls get a stop that does nothing).
    pub(crate) fn take_stop(&mut self) -> Stop {
        std::mem::replace(&mut self.stop, Stop::Nothing)
    }

    /// Its progress and events (once).
    pub(crate) fn take_events(&mut self) -> Option<RunEvents> {
        self.events.take()
    }

    /// After [`outcome`](Self::outcome): waits until every line the job printed before its
    /// answer has been given to its attempt (a pool's sink read up to a barrier put in it
    /// now; a fresh process's lines are read by its forwarder until its pipes close).
    pub(crate) async fn lines_read(&self) {
        if let Some(sink) = &self.log_sink {
            logs::barrier(sink).await;
        }
    }

    /// Waits for the attempt's end; once only. A process runner's slot is held until the
    /// attempt is dropped (after the process exited: an outcome can be known while the
    /// process still lingers).
    pub(crate) async fn outcome(&mut self) -> Ended {
        match &mut self.end {
            End::Pool(handle) => match handle.take() {
                Some(handle) => {
                    let result = handle.result().await;
                    let last = result.attempts.last();
                    Ended {
                        pid: last.map(|a| a.pid),
                        // A job claimed ahead waited in the pool's queue: it started when it
                        // was sent to its worker.
                        started: last.map(|a| offload_store::system_ms(a.started)),
                        ended: last.map(|a| offload_store::system_ms(a.ended)),
                        outcome: result.outcome,
                    }
                }
                None => Ended::cancelled(),
            },
            End::Process(process, _slot) => Ended {
                outcome: process.outcome().await,
                pid: Some(process.pid()),
                started: None,
                ended: None,
            },
            End::Cancelled => Ended::cancelled(),
        }
    }
}

/// How an attempt ended.
pub(crate) struct Ended {
    pub(crate) outcome: Outcome,
    /// Its worker, when one ran it.
    pub(crate) pid: Option<u32>,
    /// When its worker got it (ms since the epoch), when the runner knows it.
    pub(crate) started: Option<offload_store::Millis>,
    /// When its answer came, when the runner knows it.
    pub(crate) ended: Option<offload_store::Millis>,
}

impl Ended {
    /// An attempt that never reached a worker, ended with `outcome`.
    pub(crate) fn without_worker(outcome: Outcome) -> Self {
        Self {
            outcome,
            pid: None,
            started: None,
            ended: None,
        }
    }

    /// An attempt cancelled before it reached a worker.
    pub(crate) fn cancelled() -> Self {
        Self::without_worker(Outcome::Cancelled)
    }
}

/// Stops a running attempt.
pub(crate) enum Stop {
    Pool(Canceller),
    Process(JobProcess),
    Nothing,
}

impl Stop {
    /// A pool job gets `cancel` (then its worker is killed after the cancel grace); a process
    /// is killed with a 2 s grace.
    pub(crate) fn stop(self) {
        match self {
            Self::Pool(c) => c.cancel(),
            Self::Process(p) => p.start_kill(Duration::from_secs(2)),
            Self::Nothing => {}
        }
    }
}

/// What a running job reports, whichever runner runs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RunEvent {
    /// A progress value.
    Progress(Value),
    /// A named event with its data.
    Emitted {
        /// The event's name.
        name: String,
        /// Its data.
        data: Value,
    },
    /// A line a fresh process printed (a pool worker's lines are read from the pool's log
    /// sink instead: `logs.rs`).
    Log(Stream, String),
    /// The job ended (or its stream closed): nothing more comes.
    End,
}

/// A running attempt's event stream.
pub(crate) enum RunEvents {
    Pool(broadcast::Receiver<JobEvent>),
    /// A fresh process: its events, and its lines (until its pipes close).
    Process {
        events: broadcast::Receiver<ProcessEvent>,
        lines: Option<mpsc::Receiver<OutputItem>>,
        exited: bool,
    },
}

impl RunEvents {
    /// The next event that matters to the daemon (others are skipped; a lagging receiver
    /// goes on with what it still has). A fresh process ends once it exited and every line
    /// it printed was read.
    pub(crate) async fn next(&mut self) -> RunEvent {
        loop {
            let event = match self {
                Self::Pool(rx) => match rx.recv().await {
                    Ok(JobEvent::Progress { data, .. }) => Some(RunEvent::Progress(data)),
                    Ok(JobEvent::Event { name, data, .. }) => {
                        Some(RunEvent::Emitted { name, data })
                    }
                    Ok(JobEvent::Finished { .. }) | Err(broadcast::error::RecvError::Closed) => {
                        Some(RunEvent::End)
                    }
                    _ => None,
                },
                Self::Process {
                    events,
                    lines,
                    exited,
                } => {
                    if *exited && lines.is_none() {
                        return RunEvent::End;
                    }
                    tokio::select! {
                        item = next_line(lines) => match item {
                            Some(OutputItem::Line { stream, line, .. }) => {
                                Some(RunEvent::Log(stream, line))
                            }
                            Some(OutputItem::Barrier(passed)) => {
                                let _ = passed.send(());
                                None
                            }
                            Some(_) => None,
                            None => {
                                *lines = None;
                                None
                            }
                        },
                        ev = events.recv(), if !*exited => match ev {
                            Ok(ProcessEvent::Progress { data, .. }) => Some(RunEvent::Progress(data)),
                            Ok(ProcessEvent::Event { name, data, .. }) => {
                                Some(RunEvent::Emitted { name, data })
                            }
                            Ok(ProcessEvent::Exited { .. })
                            | Err(broadcast::error::RecvError::Closed) => {
                                *exited = true;
                                None
                            }
                            _ => None,
                        },
                    }
                }
            };
            if let Some(e) = event {
                return e;
            }
        }
    }
}

/// The next line of a fresh process (never, once its sink closed).
async fn next_line(lines: &mut Option<mpsc::Receiver<OutputItem>>) -> Option<OutputItem> {
    match lines {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
