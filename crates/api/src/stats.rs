//! History: `GET /v1/stats`, per-minute (or per-hour) aggregates of the jobs of a pool, a job
//! name, or all of them, from the store (kept `[history] retention_days`).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Millis;

/// The width of a point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatsStep {
    /// One point per minute (the default).
    #[default]
    Minute,
    /// One point per hour.
    Hour,
}

impl StatsStep {
    /// Its width in ms.
    pub fn ms(self) -> i64 {
        match self {
            Self::Minute => 60_000,
            Self::Hour => 3_600_000,
        }
    }
}

/// The query of `GET /v1/stats`. The window is at most 31 days and 1,500 points.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// The window's start, ms since the epoch (rounded down to a step; default: `to` minus
    /// one hour for minutes, one day for hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<i64>, minimum = 0)]
    pub from: Option<Millis>,
    /// The window's end, ms since the epoch (exclusive, rounded up to a step; default: the end
    /// of the current minute or hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<i64>, minimum = 1)]
    pub to: Option<Millis>,
    /// `minute` (default) or `hour`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StatsStep>,
    /// Only this pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(min_length = 1, max_length = 1024)]
    pub pool: Option<String>,
    /// Only this job name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(min_length = 1, max_length = 1024)]
    pub job: Option<String>,
}

/// One point of the history: what happened from `t` for one step. Counts are of attempts
/// (a job retried twice counts two `failed` then its end); run time and queue wait are
/// percentiles read from log-scale histograms, within 9.1 %.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsPoint {
    /// The point's start, ms since the epoch.
    pub t: Millis,
    /// Jobs submitted.
    pub submitted: u64,
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// Attempts that failed and were retried.
    pub failed: u64,
    /// Attempts after which the job went dead.
    pub dead: u64,
    /// Attempts that ended cancelled.
    pub cancelled: u64,
    /// Attempts that ran (the count behind the percentiles).
    pub ended: u64,
    /// Median run time, ms (`null`: no attempt ended).
    pub run_p50_ms: Option<f64>,
    /// 95th percentile of the run time, ms.
    pub run_p95_ms: Option<f64>,
    /// Median queue wait (from due to started), ms.
    pub wait_p50_ms: Option<f64>,
    /// 95th percentile of the queue wait, ms.
    pub wait_p95_ms: Option<f64>,
}

/// `GET /v1/stats`: the points of the window, oldest first, one per step (zeros where nothing
/// happened).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsSeries {
    /// The window's start (aligned to the step).
    pub from: Millis,
    /// The window's end (exclusive, aligned).
    pub to: Millis,
    /// The width of a point.
    pub step: StatsStep,
    /// The pool asked, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// The job name asked, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The points.
    pub points: Vec<StatsPoint>,
}
