//! Rate and concurrency limits: `GET /v1/limits` (each limit and where it stands), and the
//! `held` of a queued job's view. The limits come from `offload.toml` (`config/throttle.rs`);
//! the store enforces them in the claim.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use offload_api::{self as api, LimitList};
use offload_store::{HeldBy, JobState, QueueKind, ThrottleState};

use super::{json, App};
use crate::error::ApiError;

fn kind(k: QueueKind) -> api::QueueKind {
    match k {
        QueueKind::Pool => api::QueueKind::Pool,
        QueueKind::Job => api::QueueKind::Job,
    }
}

fn reason(h: HeldBy) -> api::HeldReason {
    match h {
        HeldBy::RateLimit => api::HeldReason::RateLimit,
        HeldBy::ConcurrencyLimit => api::HeldReason::ConcurrencyLimit,
    }
}

fn view(s: ThrottleState) -> api::Limit {
    api::Limit {
        held_jobs: s.held_jobs(),
        kind: kind(s.throttle.queue.kind),
        name: s.throttle.queue.name,
        rate: s.throttle.rate.map(|r| api::Rate {
            limit: r.limit,
            period_ms: r.period_ms,
        }),
        max_running: s.throttle.max_running,
        tokens: s.tokens,
        running: s.running,
        queued: s.queued,
        held: s.held.map(reason),
    }
}

/// What holds back a job of `job` in `pool` in state `state` now: its pool's limit first, then
/// its name's (`None` unless it is queued and one of them is exhausted).
pub(crate) fn held(
    states: &[ThrottleState],
    state: JobState,
    job: &str,
    pool: &str,
) -> Option<api::Held> {
    if state != JobState::Queued {
        return None;
    }
    let of = |k: QueueKind, name: &str| {
        states
            .iter()
            .find(|s| s.throttle.queue.kind == k && s.throttle.queue.name == name)
            .and_then(|s| {
                s.held.map(|h| api::Held {
                    reason: reason(h),
                    kind: kind(k),
                    name: name.to_owned(),
                })
            })
    };
    of(QueueKind::Pool, pool).or_else(|| of(QueueKind::Job, job))
}

/// The rate and concurrency limits of the configuration (`[[pool]]` and `[job."<name>"]`
/// `rate`/`max_running`), each with its tokens, running and queued jobs and whether it holds
/// them back now; pools first, then by name. On a shared store they are every node's.
#[utoipa::path(get, path = "/v1/limits", operation_id = "list_limits", tag = "ops",
    responses((status = 200, description = "The limits", body = LimitList)))]
pub(crate) async fn list(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let limits = app
        .engine
        .store
        .limits()
        .await?
        .into_iter()
        .map(view)
        .collect();
    Ok(json(StatusCode::OK, &LimitList { limits }))
}
