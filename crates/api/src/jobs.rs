//! `/v1/jobs…`: submit, batch, a job, its result, cancel, retry, lists.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A job's id: a UUIDv7 (time-ordered), as text on the wire.
pub type JobId = Uuid;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A job's state (`succeeded`, `dead` and `cancelled` are terminal; `failed` means a retry is
/// due at `run_at`; `waiting`: the jobs it runs after, `after`, are not all over yet).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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
    /// Failed for good.
    Dead,
    /// Cancelled.
    Cancelled,
    /// Waiting for the jobs it runs after (`after`).
    Waiting,
}

impl JobState {
    /// Every state.
    pub const ALL: [JobState; 8] = [
        Self::Scheduled,
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Dead,
        Self::Cancelled,
        Self::Waiting,
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

/// A job's error: `{name, message, stack}` (`name` is the outcome's class: `TimedOut`,
/// `Crashed`, `Killed`, `Exited`, `ProtocolError`, `ResourceLimit`, or the job's own error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobError {
    /// Its class.
    pub name: String,
    /// What happened.
    pub message: String,
    /// Where, when known.
    #[serde(default)]
    pub stack: Option<String>,
    /// `false` when the job marked the error not retryable: it went straight to dead, whatever
    /// attempts it had left.
    #[serde(default = "yes")]
    pub retry: bool,
}

fn yes() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The body of `POST /v1/jobs` (and each item of a batch). Only `job` is required; `delay_ms`
/// and `run_at` are exclusive. The bounds are `offload_store::limits`' (see `limits`);
/// `timeout_ms` is also bounded by the daemon's `max_timeout_ms`, and `run_at` by "at most 365
/// days ahead", which the document states in words (it moves with the clock).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Submit)]
pub struct SubmitRequest {
    /// The job's name: its file in the jobs folder without the extension
    /// (`images/resize`): `/`-separated relative components, none empty, none starting with
    /// `.`, no backslash, no control character, at most 1,024 bytes.
    #[schema(
        example = "images/resize",
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]*(/[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]*)*$"
    )]
    pub job: String,
    /// The job's input (any JSON, at most `http.max_params_bytes` of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// Higher runs first (default 0).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: Option<i32>,
    /// Not before this many ms from now (default 0).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 0, maximum = 31_536_000_000_u64)]
    pub delay_ms: Option<u64>,
    /// Not before this time (ms since the epoch): at most 365 days after the start of today
    /// (UTC); the document a daemon serves states today's bound.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 0)]
    pub run_at: Option<i64>,
    /// Per-attempt timeout (default: the pool's, else none).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 1, maximum = 604_800_000_u64)]
    pub timeout_ms: Option<u64>,
    /// Attempts in all (default: the pool's, else 3).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 1, maximum = 100)]
    pub max_attempts: Option<u32>,
    /// A second submit with this key (same job, same params) within the idempotency window
    /// returns the first job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 256)]
    pub idempotency_key: Option<String>,
    /// How long a failed attempt waits before the next (default: the job's `[job."<name>"]`
    /// section, else its pool's `backoff`, else `exponential` from the pool's `backoff_ms`,
    /// else 1000 ms, at most one hour, no jitter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<crate::Backoff>,
    /// Keep the job this long (ms) once it has succeeded, then purge it with its result,
    /// whether that is sooner or later than the daemon's `retention_hours` (default: the job's
    /// `[job."<name>"]` section, else the daemon's retention). Dead and cancelled jobs always
    /// follow the daemon's retention.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 0, maximum = 315_360_000_000_u64)]
    pub keep_result_ms: Option<u64>,
    /// With `idempotency_key`: this submit finds the key's first job only if that took the key
    /// less than this many ms ago (default: the job's `[job."<name>"]` section, else
    /// `idempotency_hours`). Ignored without a key.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 1, maximum = 31_536_000_000_u64)]
    pub key_ttl_ms: Option<u64>,
    /// `"while-active"`: while a job of the same name and the same params (or, with
    /// `idempotency_key`, the same key) is not finished, this submit returns it (`200`,
    /// `duplicate: true`) instead of making a new one (default: the job's `[job."<name>"]
    /// unique`, else none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<Unique>,
    /// Run only after these jobs (at most 64): each the id of an existing job, or in a batch
    /// `"#k"`, the job the batch's earlier item `k` (0-based) answered. The job is `waiting`
    /// until they are all over; it then runs if they all succeeded, else it is `cancelled`
    /// with a `DependencyFailed` error naming the one that did not (see `after_policy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 64, example = json!(["#0"]))]
    pub after: Option<Vec<String>>,
    /// `"succeeded"` (default): run only if every job of `after` succeeded; `"always"`: run
    /// once they are all over, whatever their ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_policy: Option<AfterPolicy>,
}

/// When a job with `after` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AfterPolicy {
    /// Only if every job it runs after succeeded (else it is cancelled).
    Succeeded,
    /// Once every job it runs after is over, whatever their ends.
    Always,
}

/// Uniqueness of a submitted job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Unique {
    /// One unfinished (scheduled, queued, running, failed) job per job name and params, or
    /// per job name and idempotency key.
    #[serde(rename = "while-active")]
    WhileActive,
}

/// The answer to one submitted job: `201` (or `200` with `duplicate: true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Submitted {
    /// The job's id (the first job's, for a duplicate).
    #[schema(value_type = String, format = Uuid)]
    pub id: JobId,
    /// Its state now.
    pub state: JobState,
    /// Whether an earlier job was returned: the same idempotency key within its window, or
    /// (`unique: "while-active"`) an unfinished job of the same name and params or key.
    #[serde(default)]
    pub duplicate: bool,
}

/// The body of `POST /v1/jobs/batch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Batch)]
pub struct BatchRequest {
    /// 1 to 1,000 jobs, committed in one transaction.
    #[schema(min_items = 1, max_items = 1000)]
    pub jobs: Vec<SubmitRequest>,
}

/// The answer to a batch, in the order of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchSubmitted {
    /// One per job of the request.
    pub jobs: Vec<Submitted>,
}

/// One attempt of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    /// 1-based, numbered on across manual retries (1, 2, then 3 after a retry).
    pub attempt: u32,
    /// The node that ran it.
    pub node: Option<String>,
    /// The worker's pid, once the attempt has ended.
    pub pid: Option<u32>,
    /// Start.
    pub started_at: i64,
    /// End, unless it runs.
    pub ended_at: Option<i64>,
    /// How it ended (`succeeded`, `failed`, `timed_out`, `crashed`, `lease_expired`, …).
    pub outcome: Option<String>,
    /// Its error, if any.
    pub error: Option<JobError>,
}

/// A job. In lists, `attempts` is `[]` and `params` / `result` are present only when asked
/// (`include`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    /// Its id.
    #[schema(value_type = String, format = Uuid)]
    pub id: JobId,
    /// Its name.
    pub job: String,
    /// Its pool.
    pub pool: String,
    /// Its input (left out of lists unless `include=params`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub params: Option<Value>,
    /// Its state.
    pub state: JobState,
    /// Priority.
    pub priority: i32,
    /// Due time.
    pub run_at: i64,
    /// Submitted at.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// The current or last attempt (0 before the first; numbered on across manual retries).
    pub attempt: u32,
    /// Attempts in all: the submitted number, raised by that much at each manual retry (at most
    /// 1,000 in all: a retry's round is cut to end there).
    pub max_attempts: u32,
    /// Per-attempt timeout.
    pub timeout_ms: Option<u64>,
    /// The first retry delay of its `backoff`.
    pub backoff_ms: u64,
    /// How long a failed attempt waits before the next.
    pub backoff: crate::Backoff,
    /// How long it is kept once it has succeeded (`null`: the daemon's retention).
    #[serde(default)]
    pub keep_result_ms: Option<u64>,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// The last progress value.
    pub progress: Option<Value>,
    /// The result (left out of lists unless `include=result`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub result: Option<Value>,
    /// The last error.
    pub error: Option<JobError>,
    /// Whether a cancel was asked while it ran.
    pub cancel_requested: bool,
    /// The node holding it (running).
    pub node: Option<String>,
    /// When its lease ends (running).
    pub lease_until: Option<i64>,
    /// The cron schedule that submitted it (`null`: submitted otherwise).
    #[serde(default)]
    pub schedule: Option<String>,
    /// A queued job that a rate or concurrency limit holds back now: which one (absent
    /// otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<crate::Held>,
    /// The jobs it runs after (absent: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub after: Vec<JobId>,
    /// When it runs (with `after` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_policy: Option<AfterPolicy>,
    /// How many of the jobs of `after` are not over yet (`waiting` while more than 0; absent:
    /// 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub waiting_on: u32,
    /// Every attempt (`[]` in lists).
    pub attempts: Vec<Attempt>,
}

/// `GET /v1/jobs/{id}/result` when the job is over (`200`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobResult {
    /// The job.
    #[schema(value_type = String, format = Uuid)]
    pub id: JobId,
    /// `succeeded`, `dead` or `cancelled`.
    pub state: JobState,
    /// Its result (succeeded).
    #[serde(default)]
    pub result: Option<Value>,
    /// Its error (dead).
    #[serde(default)]
    pub error: Option<JobError>,
}

/// `GET /v1/jobs/{id}/result` while the job is not over (`202`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobPending {
    /// The job.
    #[schema(value_type = String, format = Uuid)]
    pub id: JobId,
    /// Its state now.
    pub state: JobState,
    /// The last progress value.
    #[serde(default)]
    pub progress: Option<Value>,
}

/// A job's id and state: the answer to cancel and retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobStateView {
    /// The job.
    #[schema(value_type = String, format = Uuid)]
    pub id: JobId,
    /// Its state now.
    pub state: JobState,
}

/// The query of `GET /v1/jobs/{id}/result`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Seconds to wait for the end (a long poll; default 0).
    #[param(minimum = 0, maximum = 60)]
    pub wait: Option<f64>,
}

/// The query of `GET /v1/jobs`, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only jobs in this state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<JobState>,
    /// Only jobs of this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Only the runs of this cron schedule (its history, newest first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Only jobs submitted at or after this time (Unix milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 0, maximum = 281_474_976_710_655_i64)]
    pub since: Option<i64>,
    /// Only jobs submitted before this time (Unix milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 0, maximum = 281_474_976_710_655_i64)]
    pub until: Option<i64>,
    /// At most this many (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Continue after this cursor (`next_cursor` of the previous page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<String>, format = Uuid)]
    pub cursor: Option<Uuid>,
    /// The heavy fields to show: `params`, `result`, or both, comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(pattern = "^(params|result)(,(params|result))*$")]
    pub include: Option<String>,
}

/// A page of `GET /v1/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobPage {
    /// The jobs, newest first.
    pub jobs: Vec<Job>,
    /// Pass as `cursor` for the next page; `null` at the end.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// The query of `GET /v1/events`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only the events of this job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<String>, format = Uuid)]
    pub id: Option<Uuid>,
}

/// A field that may be left out, and whose `null` is a value (`Some(Null)`): what was sent is
/// what is written back.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_reads_and_writes_back_the_same_json() {
        let text = r#"{"id":"0193a0c4-0000-7000-8000-000000000000","job":"hello","pool":"node","state":"dead","priority":0,"run_at":1,"created_at":1,"updated_at":2,"attempt":1,"max_attempts":1,"timeout_ms":null,"backoff_ms":1000,"backoff":{"kind":"exponential","delay_ms":1000,"jitter":false},"keep_result_ms":null,"idempotency_key":null,"progress":null,"result":null,"error":{"name":"ValueError","message":"boom","stack":null,"retry":true},"cancel_requested":false,"node":null,"lease_until":null,"schedule":null,"attempts":[]}"#;
        let job: Job = serde_json::from_str(text).unwrap();
        assert_eq!(job.result, Some(Value::Null));
        assert_eq!(job.params, None);
        assert_eq!(serde_json::to_string(&job).unwrap(), text);
    }
}
