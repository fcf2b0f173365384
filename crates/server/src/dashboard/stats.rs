//! The series behind the overview's charts: jobs submitted, succeeded and failed per minute,
//! and the run time (p50, p95) and queue wait (p50, p95), over the last hour or the last day.
//!
//! [`series`] reads the persisted history through the API's own handler (`GET /v1/stats`,
//! `http/stats.rs`): the counts of every node of the store, kept `[history] retention_days`,
//! so the charts are full after a restart and "day" is a real day. A node adds its counts to
//! the store every `[history] flush_ms`, so the current minute fills in as it goes.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use offload_api::{StatsQuery, StatsSeries, StatsStep};
use offload_store::now_ms;
use serde::{Deserialize, Serialize};

use super::call::call;
use super::Dash;
use crate::error::ApiError;
use crate::http::stats as api;

/// One point per minute.
const STEP_MS: i64 = 60_000;

/// The window a chart shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Window {
    /// The last hour, per minute (60 points).
    #[default]
    Hour,
    /// The last day, per minute (1,440 points).
    Day,
}

impl Window {
    fn ms(self) -> i64 {
        match self {
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
        }
    }
}

/// What the charts draw: parallel arrays, one entry per minute, oldest first.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub(crate) struct Series {
    /// Where the points come from: `history` (the store's per-minute history).
    pub(crate) source: &'static str,
    /// Seconds per point.
    pub(crate) step_s: i64,
    /// Each point's minute, in seconds since the epoch.
    pub(crate) t: Vec<i64>,
    /// Jobs submitted in that minute.
    pub(crate) submitted: Vec<Option<f64>>,
    /// Attempts that succeeded.
    pub(crate) succeeded: Vec<Option<f64>>,
    /// Attempts that did not (failed and retried, dead, or cancelled).
    pub(crate) failed: Vec<Option<f64>>,
    /// Median run time of the attempts that ended, ms (`None`: none ended).
    pub(crate) run_p50_ms: Vec<Option<f64>>,
    /// 95th percentile of their run time, ms.
    pub(crate) run_p95_ms: Vec<Option<f64>>,
    /// Median queue wait of those attempts, ms.
    pub(crate) wait_p50_ms: Vec<Option<f64>>,
    /// 95th percentile of their queue wait, ms.
    pub(crate) wait_p95_ms: Vec<Option<f64>>,
}

/// The chart arrays of an answer of `GET /v1/stats`.
#[allow(clippy::cast_precision_loss)] // counts per minute are far below 2^52
fn arrays(s: &StatsSeries) -> Series {
    let mut out = Series {
        source: "history",
        step_s: s.step.ms() / 1000,
        ..Series::default()
    };
    for p in &s.points {
        out.t.push(p.t / 1000);
        out.submitted.push(Some(p.submitted as f64));
        out.succeeded.push(Some(p.succeeded as f64));
        out.failed
            .push(Some((p.failed + p.dead + p.cancelled) as f64));
        out.run_p50_ms.push(p.run_p50_ms);
        out.run_p95_ms.push(p.run_p95_ms);
        out.wait_p50_ms.push(p.wait_p50_ms);
        out.wait_p95_ms.push(p.wait_p95_ms);
    }
    out
}

/// The series for `window`, up to the current minute.
pub(crate) async fn series(dash: &Dash, window: Window) -> Result<Series, ApiError> {
    let to = (now_ms().div_euclid(STEP_MS) + 1) * STEP_MS;
    let q = StatsQuery {
        from: Some(to - window.ms()),
        to: Some(to),
        step: Some(StatsStep::Minute),
        pool: None,
        job: None,
    };
    let s: StatsSeries = call(api::stats(State(Arc::clone(&dash.app)), Ok(Query(q)))).await?;
    Ok(arrays(&s))
}

#[derive(Debug, Deserialize)]
pub(crate) struct WindowQuery {
    #[serde(default)]
    window: Window,
}

/// `GET /ui/stats.json?window=hour|day`.
pub(crate) async fn handler(
    State(dash): State<Arc<Dash>>,
    q: Result<Query<WindowQuery>, QueryRejection>,
) -> Response {
    let window = q.map(|Query(q)| q.window).unwrap_or_default();
    match series(&dash, window).await {
        Ok(s) => axum::Json(s).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use offload_api::StatsPoint;

    use super::*;

    #[test]
    fn points_become_chart_arrays() {
        let s = StatsSeries {
            from: 600_000,
            to: 720_000,
            step: StatsStep::Minute,
            pool: None,
            job: None,
            points: vec![
                StatsPoint {
                    t: 600_000,
                    submitted: 10,
                    succeeded: 4,
                    failed: 1,
                    dead: 1,
                    ended: 6,
                    run_p50_ms: Some(500.0),
                    run_p95_ms: Some(900.0),
                    wait_p50_ms: Some(2.0),
                    wait_p95_ms: Some(8.0),
                    ..StatsPoint::default()
                },
                StatsPoint {
                    t: 660_000,
                    ..StatsPoint::default()
                },
            ],
        };
        let a = arrays(&s);
        assert_eq!((a.source, a.step_s), ("history", 60));
        assert_eq!(a.t, [600, 660]);
        assert_eq!(a.submitted, [Some(10.0), Some(0.0)]);
        assert_eq!(a.failed, [Some(2.0), Some(0.0)]);
        assert_eq!(a.run_p95_ms, [Some(900.0), None]);
        assert_eq!(a.wait_p50_ms, [Some(2.0), None]);
    }
}
