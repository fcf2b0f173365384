//! [`ChildPool`] and [`JobHandle`]: the handles. All state lives in the actor (`actor.rs`);
//! these send it messages.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use offload_process::{check_name, JobKind, JobProcess, JobsDir};
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::actor::{self, Msg, Query};
use crate::config::{Backpressure, PoolConfig, WorkerKind};
use crate::error::{PoolError, StartError};
use crate::options::RunOptions;
use crate::params::Params;
use crate::reply::{Callback, Reply};
use crate::shared::Shared;
use crate::types::{JobEvent, JobId, JobResult, KillMode, KillOrder, PoolEvent, WorkerHealth};

/// A job's checked name and, for Node and Python pools, its file.
type Resolved = (Arc<str>, Option<Arc<str>>);

/// A job submitted to a pool.
#[derive(Debug)]
pub struct JobHandle {
    id: JobId,
    result: oneshot::Receiver<JobResult>,
    events: Option<broadcast::Receiver<JobEvent>>,
    tx: mpsc::UnboundedSender<Msg>,
    shared: Arc<Shared>,
    /// The actor's panics when the job was submitted.
    panics: u64,
}

impl JobHandle {
    /// The job's id in the pool.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Waits for the job's end: never hangs while the pool lives (a job that cannot run
    /// fails with a reason). A job lost with a panicked supervisor ends with
    /// `Outcome::Failed { name: "SupervisorFailed", .. }` (the pool restarts; see
    /// `docs/design/pool.md`).
    pub async fn result(self) -> JobResult {
        let id = self.id;
        let (shared, panics) = (self.shared, self.panics);
        self.result
            .await
            .unwrap_or_else(|_| crate::reply::lost(id, &shared, panics))
    }

    /// Asks the pool to cancel the job: a queued job ends at once, a running one gets
    /// `cancel`, then its worker is killed after the cancel grace.
    pub fn cancel(&self) {
        let _ = self.tx.send(Msg::Cancel(self.id));
    }

    /// A handle that cancels this job, usable after [`result`](Self::result) consumed this one.
    pub fn canceller(&self) -> Canceller {
        Canceller {
            id: self.id,
            tx: self.tx.clone(),
        }
    }

    /// The job's events, when it was submitted with [`RunOptions::with_events`]. The first
    /// call gets everything since the submit.
    pub fn events(&mut self) -> Option<broadcast::Receiver<JobEvent>> {
        self.events.take()
    }
}

/// Cancels one job of a pool (cloneable, detached from the [`JobHandle`]).
#[derive(Debug, Clone)]
pub struct Canceller {
    id: JobId,
    tx: mpsc::UnboundedSender<Msg>,
}

impl Canceller {
    /// Asks the pool to cancel the job (see [`JobHandle::cancel`]).
    pub fn cancel(&self) {
        let _ = self.tx.send(Msg::Cancel(self.id));
    }
}

/// A supervised pool of resident worker processes fed from one central queue.
///
/// Cheap to clone. When the last clone drops, the workers are killed. See
/// `docs/design/pool.md` for the worker state machine.
#[derive(Debug, Clone)]
pub struct ChildPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tx: mpsc::UnboundedSender<Msg>,
    shared: Arc<Shared>,
    /// The pool's state behind its lock: submissions go straight to it (`actor/direct.rs`).
    direct: Arc<actor::Direct>,
    permits: Arc<Semaphore>,
    accepting: Arc<AtomicBool>,
    next_id: AtomicU64,
    events: crate::events::PoolEvents,
    backpressure: Backpressure,
    queue_bound: usize,
    max_fds_per_run: usize,
    /// A run's event ring holds at least this many (above the backpressure bound, if any).
    min_events_capacity: usize,
    /// The runtime whose files jobs resolve to; `None` for native pools (handler names).
    kind: Option<JobKind>,
    jobs_dir: JobsDir,
    /// Job names checked (and for Node and Python pools resolved to a file), shared by their
    /// jobs: no `String` per submit.
    resolved: Mutex<HashMap<String, Resolved>>,
    registry_id: u64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        offload_process::registry::unregister(self.registry_id);
        let _ = self.tx.send(Msg::Kill { reply: None });
        for p in self.shared.processes() {
            let _ = offload_process::signal_group(p.pid(), libc::SIGKILL);
        }
    }
}

impl ChildPool {
    /// Starts the pool; resolves when `min` workers are ready.
    ///
    /// # Errors
    ///
    /// [`StartError`]: a bad configuration, a worker that cannot start (with its stderr), or
    /// the start timeout. No process is left behind.
    pub async fn start(config: PoolConfig) -> Result<Self, StartError> {
        config.validate()?;
        let kind = match config.worker {
            WorkerKind::Node => Some(JobKind::Node),
            WorkerKind::Python => Some(JobKind::Python),
            _ => None,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let events = crate::events::PoolEvents::new();
        let permits = Arc::new(Semaphore::new(config.queue_bound));
        let accepting = Arc::new(AtomicBool::new(true));
        let shared = Arc::new(Shared::new(config.kill_signal, config.kill_grace));
        let direct = Arc::new(actor::Direct::new(config.active_host_reader().is_some()));
        let registry_id = offload_process::registry::register(
            Arc::downgrade(&shared) as std::sync::Weak<dyn offload_process::registry::Managed>
        );
        // Before the first worker starts: a signal during the start ends the workers started
        // so far through the registry, as it would once the pool is up.
        if config.handle_signals {
            offload_process::registry::install_signal_handlers();
        }
        let (online_tx, online_rx) = oneshot::channel();
        let jobs_dir = JobsDir::new(&config.jobs_dir);
        let (backpressure, queue_bound) = (config.backpressure, config.queue_bound);
        let max_fds_per_run = config.max_fds_per_run;
        // Above the bound plus a run's own lifecycle events: a reading subscriber never lags.
        let min_events_capacity = config.event_backpressure.map_or(1, |n| 2 * n + 16);
        tokio::spawn(crate::supervise::supervise(
            config,
            rx,
            Arc::clone(&shared),
            Arc::clone(&direct),
            events.clone(),
            Arc::clone(&permits),
            Arc::clone(&accepting),
            online_tx,
        ));
        let pool = Self {
            inner: Arc::new(Inner {
                tx,
                shared,
                direct,
                permits,
                accepting,
                next_id: AtomicU64::new(1),
                events,
                backpressure,
                queue_bound,
                max_fds_per_run,
                min_events_capacity,
                kind,
                jobs_dir,
                resolved: Mutex::new(HashMap::new()),
                registry_id,
            }),
        };
        match online_rx.await {
            Ok(Ok(())) => Ok(pool),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StartError::Spawn(
                "the pool's task ended during start".into(),
            )),
        }
    }

    /// Submits `job` with `params`.
    ///
    /// # Errors
    ///
    /// [`PoolError`]: shutting down, queue full (fail-fast), an invalid job name, or an option
    /// out of range (a timeout above [`MAX_DURATION`](offload_process::timer::MAX_DURATION)).
    pub async fn run(&self, job: &str, params: Value) -> Result<JobHandle, PoolError> {
        self.run_with(job, params, RunOptions::default()).await
    }

    /// Submits a job bound to the worker of `key` (the seed's boundMap): the same key goes to
    /// the same worker while it lives, and is rebound when it dies.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    pub async fn run_bound(
        &self,
        key: &str,
        job: &str,
        params: Value,
    ) -> Result<JobHandle, PoolError> {
        self.run_with(job, params, RunOptions::default().key(key))
            .await
    }

    /// Submits a job with options.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    pub async fn run_with(
        &self,
        job: &str,
        params: Value,
        opts: RunOptions,
    ) -> Result<JobHandle, PoolError> {
        self.submit_for_handle(job, Params::Value(params), opts, Vec::new())
            .await
    }

    /// Submits a job whose params are JSON text, written into the worker's frame as they are:
    /// the supervisor never parses them (the Node addon's path; text with line breaks is
    /// compacted first, since a frame is one line). Otherwise as [`run_with`](Self::run_with).
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    pub async fn run_raw(
        &self,
        job: &str,
        params: Box<RawValue>,
        opts: RunOptions,
    ) -> Result<JobHandle, PoolError> {
        self.submit_for_handle(job, Params::raw(params)?, opts, Vec::new())
            .await
    }

    /// As [`run_raw`](Self::run_raw), but the result goes to `on_result`, which the pool's own
    /// task calls once with the job's [`JobResult`] (no task waits for it and none is woken to
    /// deliver it): it must not block. It is called exactly once, also when the job is lost
    /// (the pool stopped: `PoolGone`; its supervisor panicked: `SupervisorFailed`), and not
    /// when the submit is refused (the error is returned instead). `opts.events` is ignored
    /// (there is no handle to receive them; the pool's own [`events`](Self::events) still
    /// has them). Returns what cancels the job.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    pub async fn run_raw_then<F>(
        &self,
        job: &str,
        params: Box<RawValue>,
        mut opts: RunOptions,
        on_result: F,
    ) -> Result<Canceller, PoolError>
    where
        F: FnOnce(JobResult) + Send + 'static,
    {
        opts.events = false;
        let params = Params::raw(params)?;
        let (id, _) = self
            .submit(job, params, opts, Vec::new(), |id, shared| {
                Reply::Callback(Callback::new(Box::new(on_result), id, shared))
            })
            .await?;
        Ok(Canceller {
            id,
            tx: self.inner.tx.clone(),
        })
    }

    /// Submits a job with descriptors passed to its worker (`docs/protocol.md` §9): the
    /// worker's handler gets them with its run (Rust SDK: `OwnedFd`s, Python: sockets and
    /// files, Node: `net.Socket` / `net.Server` / `dgram.Socket`). The pool owns them from
    /// here and closes its copies once passed, or when the job ends without reaching a
    /// worker. Such a job has one attempt (descriptors cannot be passed twice). A worker that
    /// does not take descriptors (or not this kind), refuses one or does not acknowledge it
    /// in `fd_ack_timeout` fails the job with an error named as
    /// [`FdError::name`](offload_process::FdError::name).
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run), and [`PoolError::Fds`] for more than `max_fds_per_run`
    /// descriptors or one that is not open.
    pub async fn run_with_fds(
        &self,
        job: &str,
        params: Value,
        opts: RunOptions,
        fds: Vec<std::os::fd::OwnedFd>,
    ) -> Result<JobHandle, PoolError> {
        offload_process::FdError::check(&fds, self.inner.max_fds_per_run)?;
        self.submit_for_handle(job, Params::Value(params), opts, fds)
            .await
    }

    pub(crate) async fn submit_for_handle(
        &self,
        job: &str,
        params: Params,
        opts: RunOptions,
        fds: Vec<std::os::fd::OwnedFd>,
    ) -> Result<JobHandle, PoolError> {
        let inner = &self.inner;
        let panics = inner.shared.panics();
        let (reply, result) = oneshot::channel();
        let (id, events) = self
            .submit(job, params, opts, fds, |_, _| Reply::Handle(reply))
            .await?;
        Ok(JobHandle {
            id,
            result,
            events,
            tx: inner.tx.clone(),
            shared: Arc::clone(&inner.shared),
            panics,
        })
    }

    /// Checks and queues a job; `reply` makes where its result goes, once the job has an id.
    async fn submit(
        &self,
        job: &str,
        params: Params,
        opts: RunOptions,
        fds: Vec<std::os::fd::OwnedFd>,
        reply: impl FnOnce(JobId, Arc<Shared>) -> Reply,
    ) -> Result<(JobId, Option<broadcast::Receiver<JobEvent>>), PoolError> {
        let inner = &self.inner;
        if !inner.accepting.load(Ordering::Acquire) {
            return Err(PoolError::ShuttingDown);
        }
        if let Some(t) = opts.timeout {
            offload_process::timer::check("timeout", t)?;
        }
        if let Some(k) = &opts.key {
            crate::options::check_key(k)?;
        }
        let (name, path) = self.resolve(job)?;
        let permit = self.permit().await?;
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (events_tx, events) = if opts.events {
            // An explicit capacity is a lossy stream (`RunOptions::events_capacity`).
            let capacity = opts
                .events_capacity
                .unwrap_or_else(|| inner.min_events_capacity.max(256));
            let (t, r) = broadcast::channel(capacity.max(1));
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        let submit = actor::Submission {
            id,
            name,
            path,
            params,
            opts,
            reply: reply(id, Arc::clone(&inner.shared)),
            events: events_tx,
            permit,
            fds,
        };
        // On this task when it can (`actor/direct.rs`), else through the actor's channel.
        let Err(submit) = inner.direct.submit(submit) else {
            return Ok((id, events));
        };
        inner.direct.sending_submission();
        inner.tx.send(Msg::Submit(submit)).map_err(|e| {
            inner.direct.received_submission();
            // Refused: the caller gets the error, not a callback too.
            if let Msg::Submit(s) = e.0 {
                s.reply.forget();
            }
            PoolError::Gone
        })?;
        Ok((id, events))
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, PoolError> {
        let permits = Arc::clone(&self.inner.permits);
        match self.inner.backpressure {
            Backpressure::FailFast => permits.try_acquire_owned().map_err(|e| match e {
                tokio::sync::TryAcquireError::NoPermits => PoolError::QueueFull {
                    bound: self.inner.queue_bound,
                },
                tokio::sync::TryAcquireError::Closed => PoolError::ShuttingDown,
            }),
            _ => permits
                .acquire_owned()
                .await
                .map_err(|_| PoolError::ShuttingDown),
        }
    }

    /// Validates the name; for Node and Python pools resolves it to a file. Once per name
    /// (up to 4,096 names are kept).
    fn resolve(&self, job: &str) -> Result<Resolved, PoolError> {
        let mut cache = self
            .inner
            .resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(r) = cache.get(job) {
            return Ok(r.clone());
        }
        check_name(job).map_err(|e| PoolError::InvalidJob(e.to_string()))?;
        let path = match self.inner.kind {
            None => None,
            Some(kind) => {
                let resolved =
                    self.inner
                        .jobs_dir
                        .resolve_kind(job, kind)
                        .map_err(|e| match e {
                            offload_process::ResolveError::NotFound { .. } => {
                                PoolError::JobNotFound(e.to_string())
                            }
                            e => PoolError::InvalidJob(e.to_string()),
                        })?;
                Some(Arc::from(resolved.path.to_string_lossy().as_ref()))
            }
        };
        let r = (Arc::from(job), path);
        if cache.len() < 4096 {
            cache.insert(job.to_owned(), r.clone());
        }
        Ok(r)
    }

    /// Forgets resolved job paths (after job files were added, moved or removed).
    pub fn forget_resolved(&self) {
        self.inner
            .resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Query) -> Result<T, PoolError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Msg::Query(make(tx)))
            .map_err(|_| PoolError::Gone)?;
        rx.await.map_err(|_| PoolError::Gone)
    }

    /// The worker bound to `key`, binding one now if needed (the seed's `getBoundChild`).
    ///
    /// # Errors
    ///
    /// [`PoolError::Gone`] when the pool stopped, [`PoolError::KeyTooLong`] past
    /// [`MAX_KEY_BYTES`](crate::MAX_KEY_BYTES).
    pub async fn bound_child(&self, key: &str) -> Result<Option<JobProcess>, PoolError> {
        crate::options::check_key(key)?;
        let key = key.to_owned();
        self.ask(|reply| Query::Bound { key, reply }).await
    }

    /// A worker by pid.
    pub fn worker(&self, pid: u32) -> Option<JobProcess> {
        self.inner
            .shared
            .processes()
            .into_iter()
            .find(|p| p.pid() == pid)
    }

    /// The pids of the live workers.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .inner
            .shared
            .processes()
            .iter()
            .map(JobProcess::pid)
            .collect();
        pids.sort_unstable();
        pids
    }

    /// Per-worker health, sampled from /proc at the health interval.
    ///
    /// # Errors
    ///
    /// [`PoolError::Gone`] when the pool stopped.
    pub async fn health(&self) -> Result<Vec<WorkerHealth>, PoolError> {
        self.ask(Query::Health).await
    }

    /// Jobs waiting in the queue (delayed retries included).
    ///
    /// # Errors
    ///
    /// [`PoolError::Gone`] when the pool stopped.
    pub async fn queued(&self) -> Result<usize, PoolError> {
        self.ask(Query::Queued).await
    }

    /// Sets the number of workers: `min` becomes `n` (and `max` at least `n`); workers are
    /// started or retired (idle first, never killing a running job) to match.
    ///
    /// # Errors
    ///
    /// [`PoolError::TooManyWorkers`] when `n` is above [`MAX_WORKERS`](crate::MAX_WORKERS)
    /// (nothing changes); [`PoolError::Gone`] when the pool stopped.
    pub async fn resize(&self, n: usize) -> Result<(), PoolError> {
        if n > crate::MAX_WORKERS {
            return Err(PoolError::TooManyWorkers {
                asked: n,
                limit: crate::MAX_WORKERS,
            });
        }
        self.ask(|reply| Query::Resize { n, reply }).await
    }

    /// Replaces every worker (after job files changed): each finishes its running jobs, then
    /// stops; replacements start first. Resolved job paths are forgotten.
    ///
    /// # Errors
    ///
    /// [`PoolError::Gone`] when the pool stopped.
    pub async fn recycle_all(&self) -> Result<(), PoolError> {
        self.forget_resolved();
        self.ask(Query::RecycleAll).await
    }

    /// Sends an event to every ready worker and collects their acks until `timeout`: pid →
    /// acked in time.
    ///
    /// # Errors
    ///
    /// [`PoolError::Gone`] when the pool stopped.
    pub async fn broadcast(
        &self,
        name: &str,
        data: Value,
        timeout: Duration,
    ) -> Result<BTreeMap<u32, bool>, PoolError> {
        let name = name.to_owned();
        self.ask(|reply| Query::Broadcast {
            name,
            data,
            timeout,
            reply,
        })
        .await
    }

    /// Pool events (online, worker lifecycle, job progress/events/ends). A subscriber more
    /// than 4,096 events behind loses the oldest.
    pub fn events(&self) -> broadcast::Receiver<PoolEvent> {
        self.inner.events.subscribe()
    }

    /// The pool's control events only: what [`events`](Self::events) gives but each job's
    /// `Started`, `Progress`, `Retrying` and `Finished` (workers' lifecycle, health,
    /// broadcasts, named job events). A subscriber is then not woken for every job, and the
    /// pool makes no job event for it.
    pub fn control_events(&self) -> broadcast::Receiver<PoolEvent> {
        self.inner.events.subscribe_control()
    }

    /// Stops accepting jobs, lets queued and running jobs finish until `deadline`, sends
    /// `shutdown` to the workers, then kills what remains. Jobs that could not finish fail
    /// with `ShuttingDown`. Resolves when no worker process is left.
    pub async fn shutdown(&self, deadline: Duration) {
        self.inner.accepting.store(false, Ordering::Release);
        let (tx, rx) = oneshot::channel();
        if self
            .inner
            .tx
            .send(Msg::Shutdown {
                deadline,
                reply: tx,
            })
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// Test-only fault hook: makes the pool's actor panic, to exercise the supervisor's
    /// restart (`supervise.rs`). Never use it outside tests.
    #[cfg(feature = "fault-injection")]
    #[doc(hidden)]
    pub fn inject_panic(&self) {
        let _ = self.inner.tx.send(Msg::Query(Query::Panic));
    }

    /// Kills one worker, soft or hard (see [`KillMode`]); the pool starts its replacement.
    ///
    /// # Errors
    ///
    /// [`PoolError::NoSuchWorker`] for a pid that is not one of its workers,
    /// [`PoolError::OutOfRange`] for a grace above
    /// [`MAX_DURATION`](offload_process::timer::MAX_DURATION), [`PoolError::Gone`] when the
    /// pool stopped.
    pub async fn kill_worker(&self, pid: u32, mode: KillMode) -> Result<(), PoolError> {
        offload_process::timer::check("grace", mode.grace())?;
        self.ask(|reply| Query::KillWorker { pid, mode, reply })
            .await?
    }

    /// Kills every worker, soft or hard, at once or one after the other, and ends the pool:
    /// queued jobs fail with `ShuttingDown` (as after [`shutdown`](Self::shutdown)); with a soft kill running jobs may finish within the
    /// grace. Resolves when no worker is left.
    ///
    /// # Errors
    ///
    /// [`PoolError::OutOfRange`] for a grace above
    /// [`MAX_DURATION`](offload_process::timer::MAX_DURATION).
    pub async fn kill_all(&self, mode: KillMode, order: KillOrder) -> Result<(), PoolError> {
        offload_process::timer::check("grace", mode.grace())?;
        self.inner.accepting.store(false, Ordering::Release);
        let (tx, rx) = oneshot::channel();
        if self
            .inner
            .tx
            .send(Msg::KillAll {
                mode,
                order,
                reply: tx,
            })
            .is_ok()
        {
            let _ = rx.await;
        }
        Ok(())
    }

    /// Kills every worker at once; running and queued jobs fail. Resolves when they are gone.
    pub async fn kill(&self) {
        self.inner.accepting.store(false, Ordering::Release);
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Msg::Kill { reply: Some(tx) }).is_ok() {
            let _ = rx.await;
        }
    }
}
