//! [`EngineError`]: why the engine refused or failed a request, in the engine's own words.
//!
//! The engine knows nothing of HTTP or of the line protocol: each transport maps these errors
//! once, to its own answers (`crate::http::engine_error` to the API's status and code,
//! `crate::lines::reply` to `NNN:` lines). A variant says what kind of refusal it is; its
//! message says what happened and what to do, and is what clients read.

use thiserror::Error;

/// Why the engine refused or failed a request (submit, route, pool start, cron, wait).
#[derive(Debug, Error)]
pub(crate) enum EngineError {
    /// No job file by that name in the jobs folder.
    #[error("{0}")]
    UnknownJob(String),
    /// The request cannot be served as asked: a bad job name, a number out of range, a pool
    /// whose configuration does not fit the job.
    #[error("{0}")]
    Invalid(String),
    /// A value is larger than the configured limit (`http.max_params_bytes`).
    #[error("{field} is over {limit} bytes of JSON ({key})")]
    TooLarge {
        /// The field.
        field: &'static str,
        /// The limit in bytes.
        limit: usize,
        /// The setting that holds the limit.
        key: &'static str,
    },
    /// Admission control: the pool or the daemon has as many waiting jobs as allowed.
    #[error("{0}")]
    QueueFull(String),
    /// A cron expression that does not parse or fires too often.
    #[error("{0}")]
    InvalidCron(String),
    /// The request contradicts what exists (a schedule from `offload.toml`, too many schedules).
    #[error("{0}")]
    Conflict(String),
    /// No such thing (a schedule).
    #[error("{0}")]
    NotFound(String),
    /// A pool that cannot start, or an answer the engine cannot give.
    #[error("{0}")]
    Internal(String),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] offload_store::StoreError),
    /// Item `index` of a batch was refused (the whole batch is).
    #[error("jobs[{index}]: {error}")]
    Item {
        /// Its place in the batch.
        index: usize,
        /// Why.
        error: Box<EngineError>,
    },
}

impl From<offload_store::limits::LimitError> for EngineError {
    fn from(e: offload_store::limits::LimitError) -> Self {
        Self::Invalid(e.to_string())
    }
}
