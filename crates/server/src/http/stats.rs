//! History: `GET /v1/stats`, per-minute or per-hour aggregates from the store (kept
//! `[history] retention_days`; `offload_store::stats`). The engine reads them
//! (`engine/stats.rs`).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use offload_api::{ErrorBody, StatsPoint, StatsQuery, StatsSeries, StatsStep};
use offload_store::{now_ms, stats};

use super::{json, parse_query, App};
use crate::error::ApiError;

/// The store's query from the API's, with its defaults: up to the end of the current step,
/// one hour of minutes (60 points) or a day of hours (24).
pub(crate) fn query(q: &StatsQuery, now: i64) -> stats::StatsQuery {
    let step = q.step.unwrap_or_default();
    // Up to the end of the current step: the last point is the one in progress.
    let to =
        q.to.unwrap_or_else(|| (now.div_euclid(step.ms()) + 1).saturating_mul(step.ms()));
    let span = match step {
        StatsStep::Minute => stats::HOUR_MS,
        StatsStep::Hour => 24 * stats::HOUR_MS,
    };
    stats::StatsQuery {
        from: q.from.unwrap_or_else(|| to.saturating_sub(span)),
        to,
        step_ms: step.ms(),
        pool: q.pool.clone(),
        job: q.job.clone(),
    }
}

/// A point on the wire.
pub(crate) fn point(p: stats::StatsPoint) -> StatsPoint {
    StatsPoint {
        t: p.t,
        submitted: p.submitted,
        succeeded: p.succeeded,
        failed: p.failed,
        dead: p.dead,
        cancelled: p.cancelled,
        ended: p.ended,
        run_p50_ms: p.run_p50_ms,
        run_p95_ms: p.run_p95_ms,
        wait_p50_ms: p.wait_p50_ms,
        wait_p95_ms: p.wait_p95_ms,
    }
}

/// The history of the jobs: one point per minute (or hour) of the window, oldest first, with
/// the jobs submitted, the attempts that succeeded, failed (retried), went dead or were
/// cancelled, and the run time and queue wait p50/p95 (from log-scale histograms, within
/// 9.1 %). Summed over every node of a shared store; a node adds its counts every
/// `[history] flush_ms`, so the last seconds may be missing.
#[utoipa::path(get, path = "/v1/stats", operation_id = "stats", tag = "ops",
    params(StatsQuery),
    responses(
        (status = 200, description = "The points of the window", body = StatsSeries),
        (status = 400, description = "`invalid_request`: a window over 31 days or 1500 points, `from` not before `to`, a bad step or name", body = ErrorBody),
    ))]
pub(crate) async fn stats(
    State(app): State<Arc<App>>,
    q: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = parse_query(q)?;
    let sq = query(&q, now_ms());
    let points = app.engine.stats(&sq).await?;
    let (from, to) = sq.aligned();
    Ok(json(
        StatusCode::OK,
        &StatsSeries {
            from,
            to,
            step: q.step.unwrap_or_default(),
            pool: q.pool,
            job: q.job,
            points: points.into_iter().map(point).collect(),
        },
    ))
}
