//! [`Notice`]: what the other nodes of a shared store announce (PostgreSQL's engine sends and
//! hears them over `LISTEN`/`NOTIFY`; a daemon follows them through its `DaemonHandle`). The
//! type lives here, with the store's model, so that a daemon can follow a cluster without
//! depending on the engine that carries the notices.

use serde::{Deserialize, Serialize};

use crate::{JobId, JobState};

/// What another node of the same database announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Notice {
    /// Jobs of `pool` became claimable (submitted, retried, re-queued, or due).
    Due {
        /// The pool.
        pool: String,
    },
    /// A job changed state on another node (it ended, was cancelled, or was re-queued).
    Job(JobNotice),
    /// A cancel was asked for a running job: the node holding it should stop it.
    CancelRequested {
        /// The job.
        id: JobId,
        /// The node holding its lease.
        node: Option<String>,
    },
    /// A job running on another node reported progress (as stored: at most every 200 ms per
    /// job; a value too large for a notification is replaced by a marker).
    Progress {
        /// The job.
        id: JobId,
        /// Its progress value.
        data: serde_json::Value,
    },
    /// A schedule was created, replaced or deleted through the API, or paused or resumed: read
    /// the schedules again.
    Schedules,
    /// Node `node` was given a drain order, or had it taken back: that node reads its row
    /// (`Store::heartbeat`) at once instead of at its next heartbeat.
    Drain {
        /// The node's id.
        node: String,
    },
    /// The listening connection was (re)established: notifications may have been missed, so
    /// look at the queue once.
    Reconnected,
}

/// A job's state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobNotice {
    /// The job.
    pub id: JobId,
    /// Its name.
    pub job: String,
    /// Its pool.
    pub pool: String,
    /// Its new state.
    pub state: JobState,
    /// Its attempt.
    pub attempt: u32,
}
