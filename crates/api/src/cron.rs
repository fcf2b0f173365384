//! `/v1/cron…`: schedules.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// What a schedule does with ticks missed while the daemon was down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Missed {
    /// Fire nothing for them.
    #[default]
    Skip,
    /// Fire the most recent one once, at start.
    RunOnce,
}

impl Missed {
    /// Its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::RunOnce => "run_once",
        }
    }
}

/// What a tick does while a run of the schedule is unfinished (queued, running, or waiting).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Overlap {
    /// Fire nothing: at most one run at a time.
    #[default]
    Skip,
    /// Fire anyway: runs queue behind each other.
    Queue,
    /// Cancel the unfinished run, then fire.
    Replace,
}

impl Overlap {
    /// Its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Queue => "queue",
            Self::Replace => "replace",
        }
    }
}

/// A schedule's counters, kept by the store as its runs are submitted and end (the same on
/// every node of a shared store).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleCounters {
    /// Jobs it submitted.
    pub runs: u64,
    /// Runs that ended `dead` in a row, since the last success or resume.
    pub consecutive_failures: u32,
    /// When a run last succeeded (ms since the epoch).
    pub last_success_at: Option<i64>,
    /// When a run last ended `dead`.
    pub last_failure_at: Option<i64>,
    /// That run's error (`{name, message, stack}`).
    pub last_error: Option<Value>,
    /// One of its runs is unfinished.
    pub active: bool,
}

/// A paused schedule: no tick fires until it is resumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SchedulePause {
    /// Since when (ms since the epoch).
    pub at: i64,
    /// `manual`, or the consecutive failures that paused it (`pause_after_failures`).
    pub reason: String,
}

/// Where a schedule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ScheduleSource {
    /// `[[cron]]` of `offload.toml` (changed there only).
    Config,
    /// `POST /v1/cron` (kept in the store).
    Api,
}

/// A schedule as `GET /v1/cron` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Schedule {
    /// Its name.
    pub name: String,
    /// Its expression.
    pub cron: String,
    /// The job it submits.
    pub job: String,
    /// Its params.
    pub params: Value,
    /// What it does with missed ticks.
    pub missed: Missed,
    /// Where it comes from.
    pub source: ScheduleSource,
    /// Its next tick.
    pub next_at: Option<i64>,
    /// What a tick does while a run is unfinished.
    pub overlap: Overlap,
    /// It pauses after this many consecutive failed runs (`null`: never).
    pub pause_after_failures: Option<u32>,
    /// The IANA time zone its expression is read in (`null`: UTC).
    pub timezone: Option<String>,
    /// Each run is due up to this many ms after its tick, at random (absent: at the tick).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<u64>,
    /// After a run that ended dead, ticks fire nothing for this long, doubling with each
    /// consecutive failure (absent: no wait).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_backoff_ms: Option<u64>,
    /// The longest such wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_backoff_max_ms: Option<u64>,
    /// Set while it is paused.
    pub paused: Option<SchedulePause>,
    /// Its counters.
    pub counters: ScheduleCounters,
}

/// `GET /v1/cron`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleList {
    /// Every schedule, by name.
    pub schedules: Vec<Schedule>,
}

/// The body of `POST /v1/cron`: adds or replaces a schedule.
///
/// The document's `cron` pattern is a subset of what the daemon parses (croner syntax: 5 or 6
/// fields, lists, ranges, steps, names): the plain 5-field form, which always fires at most
/// once a minute (`[limits] min_cron_interval_ms`, default 60,000).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AddSchedule)]
pub struct AddSchedule {
    /// Unique name: 1 to 128 characters, no control character.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub name: String,
    /// The expression, e.g. `0 3 * * *`.
    #[schema(
        pattern = r"^(\*|[1-5]?[0-9]) (\*|1?[0-9]|2[0-3]) (\*|[1-9]|1[0-9]|2[0-8]) (\*|[1-9]|1[0-2]) (\*|[0-6])$"
    )]
    pub cron: String,
    /// The job it submits (a job name, see `Submit.job`).
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]*(/[^./\\\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]*)*$"
    )]
    pub job: String,
    /// Its params (any JSON, at most `http.max_params_bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// What to do with missed ticks (default `skip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<Missed>,
    /// What a tick does while a run is unfinished (default `skip`).
    // Read as text, so that an unknown value is a `400` naming this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Overlap>)]
    pub overlap: Option<String>,
    /// Pause after this many consecutive failed runs, 1 to 1000 (absent: never).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 1, maximum = 1000)]
    pub pause_after_failures: Option<i64>,
    /// The IANA time zone the expression is read in, e.g. `Europe/Berlin` (absent: UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 64)]
    pub timezone: Option<String>,
    /// Each run is due up to this many ms after its tick, at random, so that schedules on the
    /// same minute do not all start at once (absent: at the tick).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 0, maximum = 3_600_000)]
    pub jitter_ms: Option<u64>,
    /// After a run that ended dead, ticks fire nothing for this long, doubling with each
    /// consecutive failure, up to `failure_backoff_max_ms` (absent: no wait).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub failure_backoff_ms: Option<u64>,
    /// The longest wait after failures (default: `failure_backoff_ms` × 64, at most a day).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::int::opt"
    )]
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub failure_backoff_max_ms: Option<u64>,
}

/// The answer to `POST /v1/cron`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleAdded {
    /// The schedule.
    pub name: String,
    /// Its next tick.
    pub next_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JSON Schema reads `353.0` as an integer: the document says `integer`, so it is accepted
    /// (schemathesis found it refused); a fraction is not.
    #[test]
    fn pause_after_failures_takes_integral_floats_only() {
        let body =
            r#"{"name": "n", "cron": "* * * * *", "job": "j", "pause_after_failures": 353.0}"#;
        let s: AddSchedule = serde_json::from_str(body).unwrap();
        assert_eq!(s.pause_after_failures, Some(353));
        let half = body.replace("353.0", "3.5");
        assert!(serde_json::from_str::<AddSchedule>(&half).is_err());
    }
}
