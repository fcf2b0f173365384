//! Errors of the pool.

use thiserror::Error;

/// Why `ChildPool::start` failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is inconsistent.
    #[error("invalid pool configuration: {0}")]
    Config(String),
    /// The worker program cannot be prepared or started.
    #[error("cannot start a worker: {0}")]
    Spawn(String),
    /// A worker ended before its handshake.
    #[error("a worker exited before it was ready ({outcome}); its stderr ends with:\n{stderr}")]
    WorkerDied {
        /// How it ended.
        outcome: offload_process::Outcome,
        /// The last lines of its stderr.
        stderr: String,
    },
    /// Not all `min` workers were ready in time.
    #[error(
        "{ready} of {min} workers were ready after {waited:?}; stderr of the others:\n{stderr}"
    )]
    Timeout {
        /// Ready workers.
        ready: usize,
        /// Wanted.
        min: usize,
        /// How long it waited.
        waited: std::time::Duration,
        /// The last lines of the stragglers' stderr.
        stderr: String,
    },
}

/// Why a pool call failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolError {
    /// The pool is shutting down or stopped.
    #[error("the pool is shutting down")]
    ShuttingDown,
    /// The queue is full (with `Backpressure::FailFast`).
    #[error("the queue is full ({bound} jobs waiting)")]
    QueueFull {
        /// The bound.
        bound: usize,
    },
    /// The job name is not valid, is ambiguous, or resolves outside the jobs folder.
    #[error("{0}")]
    InvalidJob(String),
    /// No job file has this name (Node and Python pools resolve names to files).
    #[error("{0}")]
    JobNotFound(String),
    /// No worker of the pool has this pid.
    #[error("the pool has no worker with pid {pid}")]
    NoSuchWorker {
        /// The pid asked for.
        pid: u32,
    },
    /// The pool's task is gone.
    #[error("the pool is gone")]
    Gone,
    /// An option is out of range (a timeout above
    /// [`MAX_DURATION`](offload_process::timer::MAX_DURATION)).
    #[error(transparent)]
    OutOfRange(#[from] offload_process::timer::OutOfRange),
    /// The descriptors of [`run_with_fds`](crate::ChildPool::run_with_fds) cannot be
    /// passed: more than `max_fds_per_run`, or one is not open. (What a worker refuses later
    /// fails the job with an error of the same name.)
    #[error(transparent)]
    Fds(#[from] offload_process::FdError),
    /// [`resize`](crate::ChildPool::resize) asked for more workers than a pool may have.
    #[error("a pool has at most {limit} workers (MAX_WORKERS), {asked} were asked for")]
    TooManyWorkers {
        /// The size asked for.
        asked: usize,
        /// [`MAX_WORKERS`](crate::MAX_WORKERS).
        limit: usize,
    },
    /// An affinity key is longer than [`MAX_KEY_BYTES`](crate::MAX_KEY_BYTES).
    #[error("an affinity key is {len} bytes long, at most {limit} (MAX_KEY_BYTES)")]
    KeyTooLong {
        /// Its length in bytes.
        len: usize,
        /// [`MAX_KEY_BYTES`](crate::MAX_KEY_BYTES).
        limit: usize,
    },
    /// The sockets of [`run_with_streams`](crate::ChildPool::run_with_streams) could not be
    /// made (the process is out of descriptors, or the runtime has no I/O driver).
    #[error("the job's streams could not be made: {0}")]
    Streams(String),
}

impl PoolError {
    /// The refusal's stable code, as the host bindings name it to their users (`code` of the
    /// JavaScript and Python errors): `ShuttingDown`, `QueueFull`, `InvalidJob`,
    /// `JobNotFound`, `NoSuchWorker`, `PoolGone`, `InvalidArgument`, `Streams`, or the
    /// descriptor error's own name ([`FdError::name`](offload_process::FdError::name)).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::ShuttingDown => "ShuttingDown",
            Self::QueueFull { .. } => "QueueFull",
            Self::InvalidJob(_) => "InvalidJob",
            Self::JobNotFound(_) => "JobNotFound",
            Self::NoSuchWorker { .. } => "NoSuchWorker",
            Self::Gone => "PoolGone",
            Self::OutOfRange(_) | Self::TooManyWorkers { .. } | Self::KeyTooLong { .. } => {
                "InvalidArgument"
            }
            Self::Fds(e) => e.name(),
            Self::Streams(_) => "Streams",
        }
    }
}
