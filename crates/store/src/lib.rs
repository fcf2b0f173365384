//! Durable job storage for `offload serve`.
//!
//! [`Store`] is the contract between the daemon and a storage engine. It is made for two
//! engines — embedded SQLite now, PostgreSQL next — so nothing in it assumes a single process:
//! jobs are *claimed* by a node with a *lease* that the node renews; a job whose lease expired is
//! claimable again (its attempt counted: at-least-once).
//!
//! # Job states
//!
//! ```text
//!  submit ─▶ scheduled ──(run_at due)──▶ queued ──claim──▶ running ──▶ succeeded
//!              ▲                            ▲                 │
//!              │                            │                 ├──▶ failed ──(retry due)──▶ queued
//!              │                            └─ lease expired ─┤            └─(no attempts left)─▶ dead
//!              └─ (delay / run_at in the future)              └──▶ cancelled
//! ```
//!
//! A job submitted with `after` starts `waiting` until the jobs it names are over, then goes
//! on as `queued` (or `scheduled`), or ends `cancelled` (see [`after`]).
//!
//! `succeeded`, `dead` and `cancelled` are terminal; `failed` means "an attempt failed, a retry
//! is scheduled at `run_at`". `retry` moves a `dead` or `cancelled` job back to `queued`.
//!
//! # Engines and the rules they share
//!
//! - `sqlite` (feature `sqlite`, on by default): the embedded engine, `SqliteStore`. Without the
//!   feature the crate does not compile SQLite; `offload-store-pg` depends on it that way, so a
//!   binary that uses only PostgreSQL does not either.
//! - `offload-store-pg`: the PostgreSQL engine, for several daemons sharing one queue.
//! - [`rules`]: what every engine applies, written once: validation, `list`'s pages and cursor,
//!   records decoded from rows by column name, the decisions of `cancel`/`retry`/`complete`,
//!   the migration loop. An engine keeps only its SQL (in `.sql` files, one folder per group
//!   of operations: submit, claim, complete, admin, read, cron) and how it runs it.
//! - [`limits`]: the bounds of every number a job carries.
//! - [`throttle`]: rate and concurrency limits of pools and job names, enforced by `claim`.
//! - `testkit` (feature `testkit`): the conformance suite every engine runs, split by the same
//!   groups.
#![deny(missing_docs)]

pub mod after;
pub mod bulk;
pub mod limits;
pub mod logs;
pub mod nodes;
mod notice;
pub mod queues;
pub mod rules;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod stats;
mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod throttle;

pub use after::{After, AfterPolicy};
pub use bulk::{BulkAction, BulkOutcome, JobFilter};
pub use logs::{LogLine, LogQuery, LogStream};
pub use nodes::{AfterDrain, Beat, DrainOrder, DrainRequest, NodeRecord, NodeStart, NodeState};
pub use notice::{JobNotice, Notice};
pub use queues::{PausedQueue, Queue, QueueKind};
pub use rules::retry::{Backoff, Curve};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
pub use stats::{Metric, StatCell, StatRow, StatsQuery};
pub use store::Store;
pub use throttle::{HeldBy, Rate, Throttle, ThrottleState};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

/// Milliseconds since the Unix epoch: every timestamp of the store.
pub type Millis = i64;

/// The current time in [`Millis`].
pub fn now_ms() -> Millis {
    system_ms(std::time::SystemTime::now())
}

/// `t` in [`Millis`] (0 before the epoch).
pub fn system_ms(t: std::time::SystemTime) -> Millis {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A job's id: a UUIDv7 (time-ordered), as text on the wire.
pub type JobId = uuid::Uuid;

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its `run_at`.
    Scheduled,
    /// Ready to be claimed.
    Queued,
    /// Claimed by a node, leased.
    Running,
    /// Done, with a result.
    Succeeded,
    /// An attempt failed; a retry is due at `run_at`.
    Failed,
    /// Failed for good (no attempts left, or not retryable).
    Dead,
    /// Cancelled.
    Cancelled,
    /// Waiting for the jobs it runs after ([`after`]).
    Waiting,
}

impl JobState {
    /// Every state.
    pub const ALL: [JobState; 8] = [
        JobState::Scheduled,
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Dead,
        JobState::Cancelled,
        JobState::Waiting,
    ];

    /// Its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
            Self::Waiting => "waiting",
        }
    }

    /// Whether the job is over.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Dead | Self::Cancelled)
    }
}

impl std::str::FromStr for JobState {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| StoreError::Invalid(format!("unknown state {s:?}")))
    }
}

/// A job to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// The job's name (validated by the caller).
    pub job: String,
    /// Its input.
    pub params: Value,
    /// The pool that runs it (decided by the caller's routing).
    pub pool: String,
    /// Higher runs first (default 0).
    pub priority: i32,
    /// Not before this time (`None`: now). In the future → `scheduled`.
    pub run_at: Option<Millis>,
    /// Per-attempt timeout.
    pub timeout_ms: Option<u64>,
    /// Attempts in all (≥ 1).
    pub max_attempts: u32,
    /// Retry delay: `backoff_ms · 2^(attempt-1)`, at most one hour, unless `backoff` says
    /// otherwise (then the first delay of its curve, for the job's view).
    pub backoff_ms: u64,
    /// How retries wait ([`rules::retry`]); `None`: [`Backoff::legacy`]`(backoff_ms)`.
    pub backoff: Option<Backoff>,
    /// Keep the job this long once it has succeeded (`None`: the daemon's retention).
    pub keep_result_ms: Option<u64>,
    /// A duplicate submit with the same key within the idempotency window returns the first job.
    pub idempotency_key: Option<String>,
    /// This submit's idempotency window, in ms (`None`: the store's `window`): it finds the
    /// key's first job only if that took the key less than this long ago.
    pub key_ttl_ms: Option<u64>,
    /// Set by cron: the schedule's name and tick, unique together (a tick fires once).
    pub cron: Option<CronTick>,
    /// `unique = "while-active"`: while a job of the same name and the same params (or the
    /// same idempotency key, when given) is not finished (scheduled, queued, running or
    /// failed), the submit returns it (`duplicate: true`) instead of a new job
    /// ([`rules::submit::unique_key`]).
    #[serde(default)]
    pub unique: bool,
    /// The jobs it runs after (at most [`after::MAX_AFTER`]): it is `waiting` until they are
    /// over ([`after`]).
    #[serde(default)]
    pub after: Vec<After>,
    /// What it does when one of them ends dead or cancelled.
    #[serde(default)]
    pub after_policy: AfterPolicy,
}

/// A cron tick that produced a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronTick {
    /// The schedule's name.
    pub schedule: String,
    /// The tick's time.
    pub tick: Millis,
}

/// The answer to one submitted job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    /// The job's id (the first job's id for a duplicate).
    pub id: JobId,
    /// Its state now.
    pub state: JobState,
    /// Whether an earlier job was returned: the same idempotency key within its window, the
    /// same cron tick, or an unfinished job of a `unique` submit.
    pub duplicate: bool,
}

/// A claimed job, as a node receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claimed {
    /// The job.
    pub id: JobId,
    /// Its name.
    pub job: String,
    /// Its pool.
    pub pool: String,
    /// Its input.
    pub params: Value,
    /// The attempt number now starting (1-based; counts expired leases too; numbered on
    /// across manual retries).
    pub attempt: u32,
    /// Attempts in all (raised by the job's round at each manual retry).
    pub max_attempts: u32,
    /// Per-attempt timeout.
    pub timeout_ms: Option<u64>,
    /// Retry backoff base.
    pub backoff_ms: u64,
    /// How retries wait (the job's, else [`Backoff::legacy`]`(backoff_ms)`).
    pub backoff: Backoff,
    /// When it was submitted.
    pub created_at: Millis,
    /// When it became due (for queue-wait latency).
    pub run_at: Millis,
}

/// How many jobs of a pool a node wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    /// The pool.
    pub pool: String,
    /// How many at most.
    pub n: usize,
}

/// An error as stored: `{name, message, stack}`, and `retry: false` when the job marked it
/// not retryable (it went dead with attempts left).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredError {
    /// Its class.
    pub name: String,
    /// What happened.
    pub message: String,
    /// Where.
    pub stack: Option<String>,
    /// `false`: the job said no retry could help (stored only then; absent reads as `true`).
    #[serde(default = "retry_default", skip_serializing_if = "is_true")]
    pub retry: bool,
}

fn retry_default() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_true(b: &bool) -> bool {
    *b
}

/// How an attempt ended, and what becomes of the job. The caller (the daemon) decides between
/// `Retry` and `Dead` from the outcome and the attempts left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "then", rename_all = "snake_case")]
pub enum Transition {
    /// → `succeeded` with this result.
    Succeeded {
        /// The job's result.
        result: Value,
    },
    /// → `failed`, retried at `run_at`.
    Retry {
        /// Why the attempt failed.
        error: StoredError,
        /// When to retry.
        run_at: Millis,
    },
    /// → `dead`.
    Dead {
        /// Why.
        error: StoredError,
    },
    /// → `cancelled`.
    Cancelled,
    /// → `queued` again at once, the attempt not counted (its next claim runs the same attempt
    /// number): a draining node past its deadline handed the job back. A cancel asked while it
    /// ran makes it `cancelled` instead.
    HandBack,
}

/// The end of one attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The job.
    pub id: JobId,
    /// The attempt that ended (must match the job's current attempt, else it is ignored: a
    /// late answer after the lease moved the job elsewhere).
    pub attempt: u32,
    /// The node that ran it.
    pub node: String,
    /// The worker's pid, if any.
    pub pid: Option<u32>,
    /// When the attempt started.
    pub started_at: Millis,
    /// When it ended.
    pub ended_at: Millis,
    /// How it ended, as a short word (`succeeded`, `failed`, `timed_out`, `crashed`, …).
    pub outcome: String,
    /// What becomes of the job.
    pub then: Transition,
}

/// One attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1-based, numbered on across manual retries.
    pub attempt: u32,
    /// The node.
    pub node: Option<String>,
    /// The worker's pid.
    pub pid: Option<u32>,
    /// Start.
    pub started_at: Millis,
    /// End, unless it is running (or its node died: then `outcome` is `lease_expired`).
    pub ended_at: Option<Millis>,
    /// How it ended (`None` while running).
    pub outcome: Option<String>,
    /// Its error, if any.
    pub error: Option<StoredError>,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Its id.
    pub id: JobId,
    /// Its name.
    pub job: String,
    /// Its pool.
    pub pool: String,
    /// Its input.
    pub params: Value,
    /// Its state.
    pub state: JobState,
    /// Priority.
    pub priority: i32,
    /// Due time (for `scheduled`/`failed`/`queued`).
    pub run_at: Millis,
    /// Submitted at.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
    /// The current or last attempt (0 before the first claim; a manual retry keeps it).
    pub attempt: u32,
    /// Attempts in all: as submitted, raised by that much at each manual retry (schema v10).
    pub max_attempts: u32,
    /// Timeout.
    pub timeout_ms: Option<u64>,
    /// Backoff base.
    pub backoff_ms: u64,
    /// How retries wait (the job's, else [`Backoff::legacy`]`(backoff_ms)`).
    pub backoff: Backoff,
    /// How long it is kept once it has succeeded (`None`: the daemon's retention).
    pub keep_result_ms: Option<u64>,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// The last progress value.
    pub progress: Option<Value>,
    /// The result (succeeded).
    pub result: Option<Value>,
    /// The last error.
    pub error: Option<StoredError>,
    /// Whether a cancel was asked while it ran (the node kills it).
    pub cancel_requested: bool,
    /// The node holding the lease (running).
    pub node: Option<String>,
    /// When the lease ends (running).
    pub lease_until: Option<Millis>,
    /// The cron schedule that submitted it, if one did.
    pub schedule: Option<String>,
    /// The jobs it runs after (empty: none).
    pub after: Vec<JobId>,
    /// What it does when one of them ends dead or cancelled.
    pub after_policy: AfterPolicy,
    /// How many of them are not over yet (`waiting` while more than 0).
    pub waiting_on: u32,
    /// Every attempt (filled by `get`, empty in lists).
    pub attempts: Vec<AttemptRecord>,
}

/// Filters of `list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only this state.
    pub state: Option<JobState>,
    /// Only this job name.
    pub job: Option<String>,
    /// Only the runs of this cron schedule.
    pub schedule: Option<String>,
    /// Only jobs submitted at or after this time (read from the time-ordered id).
    pub since: Option<Millis>,
    /// Only jobs submitted before this time (read from the time-ordered id).
    pub until: Option<Millis>,
    /// At most this many (the engine caps it at 1,000).
    pub limit: usize,
    /// Continue after this cursor (from a previous page).
    pub cursor: Option<String>,
}

/// A page of jobs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// The jobs (without attempts).
    pub jobs: Vec<JobRecord>,
    /// Pass as `cursor` for the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// What `cancel` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelResult {
    /// It was waiting: now `cancelled`.
    Cancelled,
    /// It is running: `cancel_requested` is set; the node holding it must kill it and complete
    /// it with [`Transition::Cancelled`].
    Requested,
    /// It was already over; its state is unchanged.
    AlreadyDone(JobState),
}

/// A cron schedule kept in the store (schedules from `offload.toml` are not stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CronSchedule {
    /// Unique name.
    pub name: String,
    /// The expression (croner syntax).
    pub cron: String,
    /// The job it submits.
    pub job: String,
    /// Its params.
    pub params: Value,
    /// `skip` or `run_once`: what to do with ticks missed while the daemon was down.
    pub missed: String,
    /// Created at.
    pub created_at: Millis,
    /// `skip` (no tick while a run of it is unfinished) or `queue` (every tick fires).
    pub overlap: String,
    /// Pause after this many consecutive failed runs (`None`: never).
    pub pause_after_failures: Option<u32>,
    /// The IANA time zone its expression is read in (`None`: UTC).
    pub timezone: Option<String>,
    /// Each run is due up to this many ms after its tick, at random (`None`: at the tick).
    #[serde(default)]
    pub jitter_ms: Option<u64>,
    /// After a run that ended `dead`, ticks fire nothing for this long, doubling with each
    /// consecutive failure (`None`: no wait; the counters it reads are the store's, so every
    /// node waits alike).
    #[serde(default)]
    pub failure_backoff_ms: Option<u64>,
    /// The longest such wait (`None`: [`failure_backoff_ms`](Self::failure_backoff_ms) × 64,
    /// at most a day).
    #[serde(default)]
    pub failure_backoff_max_ms: Option<u64>,
}

/// The counters of a schedule (from `offload.toml` or stored), kept by the store as its jobs
/// are submitted and end: the same on every node of a shared store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CronState {
    /// The schedule's name.
    pub schedule: String,
    /// Jobs it submitted.
    pub runs: u64,
    /// Its runs that ended `dead` since the last that succeeded (or since a resume).
    pub consecutive_failures: u32,
    /// When a run last succeeded.
    pub last_success_at: Option<Millis>,
    /// When a run last ended `dead`.
    pub last_failure_at: Option<Millis>,
    /// That run's error.
    pub last_error: Option<Value>,
    /// When it was paused (`None`: it is not).
    pub paused_at: Option<Millis>,
    /// Why (`manual`, or the failures that paused it).
    pub paused_reason: Option<String>,
    /// One of its jobs is not finished yet (scheduled, queued, running or failed).
    pub active: bool,
}

/// Why a store call failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No such job (or schedule).
    #[error("not found")]
    NotFound,
    /// The request is not valid for the job's state (retry of a running job, say).
    #[error("conflict: {0}")]
    Conflict(String),
    /// An idempotency key of a job name, within its window, names a job with other params.
    /// The other job is not revealed.
    #[error(
        "idempotency key {key:?} was used within the idempotency window for this job name with \
         other params; send the same params to get the first job, or use a new key"
    )]
    IdempotencyConflict {
        /// The key.
        key: String,
    },
    /// A number out of its range (see [`limits`]).
    #[error(transparent)]
    Limit(#[from] limits::LimitError),
    /// A bad argument (unknown state, bad cursor).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The engine failed.
    #[error("storage engine error: {0}")]
    Engine(String),
    /// A live node already uses this node id (see [`nodes`]).
    #[error(
        "node id {id:?} is in use by a live node (its last heartbeat was {heartbeat_age_ms} ms \
         ago): give this node another id (--node-id, or node_id in offload.toml), or stop the \
         other node first (a node that died is taken over once its heartbeat stops)"
    )]
    NodeInUse {
        /// The id.
        id: String,
        /// The live row's last heartbeat (the store's clock).
        heartbeat_at: Millis,
        /// Its age at the check.
        heartbeat_age_ms: u64,
    },
    /// The schema in the database is newer than this binary.
    #[error("the database schema is version {found}, this offload supports up to {supported}")]
    SchemaTooNew {
        /// In the database.
        found: u32,
        /// Known to this binary.
        supported: u32,
    },
}

/// Counts of jobs per (pool, state), for metrics and `GET /v1/pools`.
pub type Counts = BTreeMap<(String, JobState), u64>;
