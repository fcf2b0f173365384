//! [`RunOptions`]: what a caller may set for one job. It sits below both the handles
//! (`pool.rs`, which take it) and the actor (`actor/messages.rs`, which carries it in a
//! submission), so neither imports the other for it.

use std::time::Duration;

/// Options of one job.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RunOptions {
    /// Per-attempt timeout (default: the pool's).
    pub timeout: Option<Duration>,
    /// Attempts in all (default: the pool's retry policy).
    pub max_attempts: Option<u32>,
    /// Affinity: jobs with the same key go to the same worker while it lives.
    pub key: Option<String>,
    /// Keep a per-job event stream ([`JobHandle::events`](crate::JobHandle::events)).
    pub events: bool,
    /// The descriptors of [`run_with_fds`](crate::ChildPool::run_with_fds) are only offered:
    /// a worker that does not take descriptors (or not of their kinds) gets the run without
    /// them instead of the job failing (default false).
    pub fds_optional: bool,
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

    /// Keeps a per-job event stream.
    #[must_use]
    pub fn with_events(mut self) -> Self {
        self.events = true;
        self
    }
}
