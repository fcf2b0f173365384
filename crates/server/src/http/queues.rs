//! Paused queues: pause and resume a pool (`/v1/pools/{name}/pause|resume`) or every job of a
//! name (`/v1/queues/{job}/pause|resume`, the name percent-encoded: `images%2Fresize`), and the
//! list of paused queues (`GET /v1/queues`). The engine does the work (`engine/queues.rs`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use offload_api::{self as api, ErrorBody, PausedQueueList, QueueStatus};
use offload_store::{Queue, QueueKind};

use super::{json, App};
use crate::error::ApiError;

fn kind(k: QueueKind) -> api::QueueKind {
    match k {
        QueueKind::Pool => api::QueueKind::Pool,
        QueueKind::Job => api::QueueKind::Job,
    }
}

async fn set(app: &App, queue: Queue, pause: bool) -> Result<Response, ApiError> {
    let changed = if pause {
        app.engine.pause_queue(&queue).await?
    } else {
        app.engine.resume_queue(&queue).await?
    };
    Ok(json(
        StatusCode::OK,
        &QueueStatus {
            kind: kind(queue.kind),
            name: queue.name,
            paused: pause,
            changed,
        },
    ))
}

/// Pause a pool: it keeps its jobs and claims none (on every node of a shared store) until it
/// is resumed; running jobs finish. Survives restarts.
#[utoipa::path(post, path = "/v1/pools/{name}/pause", operation_id = "pause_pool", tag = "ops",
    params(("name" = String, Path, max_length = 1024, description = "The pool's name")),
    responses(
        (status = 200, description = "Paused (`changed: false`: it was already)", body = QueueStatus),
        (status = 400, description = "`invalid_request`: a name over 1024 bytes, or 1000 queues paused already", body = ErrorBody),
        (status = 404, description = "`not_found`: no such pool", body = ErrorBody),
    ))]
pub(crate) async fn pause_pool(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    set(&app, Queue::pool(name), true).await
}

/// Resume a paused pool.
#[utoipa::path(post, path = "/v1/pools/{name}/resume", operation_id = "resume_pool", tag = "ops",
    params(("name" = String, Path, max_length = 1024, description = "The pool's name")),
    responses(
        (status = 200, description = "Resumed (`changed: false`: it was not paused)", body = QueueStatus),
        (status = 400, description = "`invalid_request`: a name over 1024 bytes", body = ErrorBody),
        (status = 404, description = "`not_found`: no such pool", body = ErrorBody),
    ))]
pub(crate) async fn resume_pool(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    set(&app, Queue::pool(name), false).await
}

/// Pause every job of a name, in whatever pool: its jobs stay queued, none is claimed (on
/// every node of a shared store) until it is resumed; running ones finish. The name need not
/// have a job file yet. Survives restarts.
#[utoipa::path(post, path = "/v1/queues/{job}/pause", operation_id = "pause_job_queue", tag = "ops",
    params(("job" = String, Path, max_length = 1024, description = "The job's name, percent-encoded (`images%2Fresize`)")),
    responses(
        (status = 200, description = "Paused (`changed: false`: it was already)", body = QueueStatus),
        (status = 400, description = "`invalid_request`: a name over 1024 bytes, or 1000 queues paused already", body = ErrorBody),
    ))]
pub(crate) async fn pause_job(
    State(app): State<Arc<App>>,
    Path(job): Path<String>,
) -> Result<Response, ApiError> {
    set(&app, Queue::job(job), true).await
}

/// Resume the jobs of a name.
#[utoipa::path(post, path = "/v1/queues/{job}/resume", operation_id = "resume_job_queue", tag = "ops",
    params(("job" = String, Path, max_length = 1024, description = "The job's name, percent-encoded (`images%2Fresize`)")),
    responses(
        (status = 200, description = "Resumed (`changed: false`: it was not paused)", body = QueueStatus),
        (status = 400, description = "`invalid_request`: a name over 1024 bytes", body = ErrorBody),
    ))]
pub(crate) async fn resume_job(
    State(app): State<Arc<App>>,
    Path(job): Path<String>,
) -> Result<Response, ApiError> {
    set(&app, Queue::job(job), false).await
}

/// The paused queues (pools and job names), pools first, then by name.
#[utoipa::path(get, path = "/v1/queues", operation_id = "list_paused_queues", tag = "ops",
    responses((status = 200, description = "Paused queues", body = PausedQueueList)))]
pub(crate) async fn list(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let queues = app
        .engine
        .paused_queues()
        .await?
        .into_iter()
        .map(|p| api::PausedQueue {
            kind: kind(p.queue.kind),
            name: p.queue.name,
            paused_at: p.paused_at,
        })
        .collect();
    Ok(json(StatusCode::OK, &PausedQueueList { queues }))
}
