//! [`RunOptions`]: what a caller may set for one job. It sits below both the handles
//! (`pool.rs`, which take it) and the actor (`actor/messages.rs`, which carries it in a
//! submission), so neither imports the other for it.

use std::time::Duration;

use crate::error::PoolError;

/// The longest affinity key ([`RunOptions::key`], [`ChildPool::bound_child`](crate::ChildPool::bound_child)), in bytes.
pub const MAX_KEY_BYTES: usize = 1_024;

/// Checks an affinity key's length.
pub(crate) fn check_key(key: &str) -> Result<(), PoolError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(PoolError::KeyTooLong {
            len: key.len(),
            limit: MAX_KEY_BYTES,
        });
    }
    Ok(())
}

/// Options of one job.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RunOptions {
    /// Per-attempt timeout (default: the pool's).
    pub timeout: Option<Duration>,
    /// Attempts in all (default: the pool's retry policy).
    pub max_attempts: Option<u32>,
    /// Affinity: jobs with the same key go to the same worker while it lives (at most
    /// [`MAX_KEY_BYTES`]; a pool remembers at most [`MAX_BINDINGS`](crate::MAX_BINDINGS) keys
    /// with no job in flight, forgetting the least recently used past that: such a key is bound
    /// again at its next job; a key with a job in flight is never forgotten).
    pub key: Option<String>,
    /// Runs the job on this worker only (by pid; ee-core's `JobProcess.dispatch`): it waits
    /// while that worker is busy, has one attempt, and fails with `NoSuchWorker` when the
    /// worker is gone or takes no more jobs (draining, stopping). Set, it overrides `key`.
    pub worker: Option<u32>,
    /// Positional arguments for the job (ee-core's `jobParams`: its class is made with
    /// `new Job(...args)` and `handle(...args)` is called; the Node SDK's legacy form). Sent
    /// beside `params`, in the same frame (bounded by the frame limit).
    pub args: Option<Vec<serde_json::Value>>,
    /// Keep a per-job event stream ([`JobHandle::events`](crate::JobHandle::events)).
    pub events: bool,
    /// Called with the worker's pid each time the job is given to a worker, before its run
    /// is written to the worker (so before the job can print anything there).
    pub on_start: Option<OnStart>,
    /// Events the stream holds for a slow reader before the oldest are dropped (default
    /// 256; a reader that only wants a job's few lifecycle events can ask for less: the
    /// buffer is allocated with every job). In a pool with
    /// [`event_backpressure`](crate::PoolConfig::event_backpressure) such a stream stays
    /// lossy and never holds the worker's channel (its events carry no credit), for a reader
    /// that reads it only now and then; without an explicit capacity the stream is made
    /// larger than the bound and every event waits for its reader.
    pub events_capacity: Option<usize>,
    /// The descriptors of [`run_with_fds`](crate::ChildPool::run_with_fds) are only offered:
    /// a worker that does not take descriptors (or not of their kinds) gets the run without
    /// them instead of the job failing (default false).
    pub fds_optional: bool,
    /// Set by [`run_with_streams`](crate::ChildPool::run_with_streams): which of the run's
    /// descriptors are its streams.
    pub(crate) streams: Option<offload_protocol::StreamSpec>,
}

/// A job's start hook ([`RunOptions::on_start`]): runs under the pool's state lock (on the
/// actor's task or a submitting or answering one), so it must be quick, must not block and must
/// not call the pool.
#[derive(Clone)]
pub struct OnStart(pub std::sync::Arc<dyn Fn(u32) + Send + Sync>);

impl std::fmt::Debug for OnStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnStart(..)")
    }
}

impl RunOptions {
    /// Sets the timeout.
    #[must_use]
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// Sets the attempts.
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// Offers the descriptors instead of requiring them (see [`fds_optional`](Self::fds_optional)).
    #[must_use]
    pub fn offer_fds(mut self) -> Self {
        self.fds_optional = true;
        self
    }

    /// Binds the job to the worker of `key`.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Runs the job on the worker `pid` only (see [`worker`](Self::worker)).
    #[must_use]
    pub fn on_worker(mut self, pid: u32) -> Self {
        self.worker = Some(pid);
        self
    }

    /// Calls `hook` with the worker's pid each time the job is given to a worker, before the
    /// worker gets it.
    #[must_use]
    pub fn on_start(mut self, hook: impl Fn(u32) + Send + Sync + 'static) -> Self {
        self.on_start = Some(OnStart(std::sync::Arc::new(hook)));
        self
    }

    /// Keeps a per-job event stream.
    #[must_use]
    pub fn with_events(mut self) -> Self {
        self.events = true;
        self
    }

    /// Keeps a per-job event stream holding at most `n` unread events (at least 1).
    #[must_use]
    pub fn with_events_capacity(mut self, n: usize) -> Self {
        self.events = true;
        self.events_capacity = Some(n.max(1));
        self
    }
}
