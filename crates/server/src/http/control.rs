//! Control of a pool's workers: kill one (soft or hard) and broadcast an event to all
//! (`docs/http-api.md`, "Workers").

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use offload_api::control::{
    DEFAULT_BROADCAST_TIMEOUT_MS, DEFAULT_KILL_GRACE_MS, MAX_BROADCAST_DATA, MAX_BROADCAST_NAME,
    MAX_BROADCAST_TIMEOUT_MS, MAX_KILL_GRACE_MS,
};
use offload_api::{
    BroadcastAck, BroadcastRequest, Broadcasted, ErrorBody, ErrorCode, KillMode, KillRequest,
    WorkerKilled,
};
use offload_pool::PoolError;

use super::{json, parse_body, App};
use crate::error::ApiError;

/// The 409 of a pool that runs a process per job.
fn per_job(name: &str, what: &str) -> ApiError {
    ApiError::of(
        ErrorCode::Conflict,
        format!("pool {name:?} runs a process per job: no worker to {what}"),
    )
}

fn no_pool(name: &str) -> ApiError {
    ApiError::not_found(format!("no pool {name:?}"))
}

/// Kill one worker of a pool: `soft` sends `shutdown` (its running jobs and its shutdown hook
/// may finish within the grace), `hard` sends the `kill` notice, then SIGKILL after the grace.
/// The pool starts a replacement.
#[utoipa::path(post, path = "/v1/pools/{name}/workers/{pid}/kill", operation_id = "kill_worker",
    tag = "ops",
    params(
        ("name" = String, Path, description = "The pool's name"),
        ("pid" = u32, Path, description = "The worker's pid (`GET /v1/workers`)"),
    ),
    request_body = KillRequest,
    responses(
        (status = 200, description = "Being killed", body = WorkerKilled),
        (status = 400, description = "`invalid_json`, `invalid_request`: a grace over 600,000 ms, a pid that is not a number", body = ErrorBody),
        (status = 404, description = "`not_found`: no such pool, or no worker with that pid in it", body = ErrorBody),
        (status = 409, description = "`conflict`: the pool runs a process per job", body = ErrorBody),
    ))]
pub(crate) async fn kill_worker(
    State(app): State<Arc<App>>,
    Path((name, pid)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let pid: u32 = pid
        .parse()
        .map_err(|_| ApiError::bad_request(format!("pid {pid:?} is not a process id")))?;
    let body: KillRequest = parse_body(body)?;
    let grace_ms = body.grace_ms.unwrap_or(DEFAULT_KILL_GRACE_MS);
    if grace_ms > MAX_KILL_GRACE_MS {
        return Err(ApiError::bad_request(format!(
            "grace_ms {grace_ms} is over the maximum of {MAX_KILL_GRACE_MS}"
        )));
    }
    let entry = app.engine.pool(&name).ok_or_else(|| no_pool(&name))?;
    let pool = entry.pool().ok_or_else(|| per_job(&name, "kill"))?;
    let grace = Duration::from_millis(grace_ms);
    let mode = match body.mode {
        KillMode::Hard => offload_pool::KillMode::Hard { grace },
        _ => offload_pool::KillMode::Soft { grace },
    };
    pool.kill_worker(pid, mode).await.map_err(|e| match e {
        PoolError::NoSuchWorker { .. } => {
            ApiError::not_found(format!("pool {name:?} has no worker with pid {pid}"))
        }
        other => ApiError::internal(other.to_string()),
    })?;
    Ok(json(
        StatusCode::OK,
        &WorkerKilled {
            pool: name,
            pid,
            mode: body.mode,
            grace_ms,
        },
    ))
}

/// Send an event to every ready worker of a pool (their `onEvent` / `on_event` listeners run)
/// and answer, once each acknowledged or the timeout passed, which did.
#[utoipa::path(post, path = "/v1/pools/{name}/broadcast", operation_id = "broadcast",
    tag = "ops",
    params(("name" = String, Path, description = "The pool's name")),
    request_body = BroadcastRequest,
    responses(
        (status = 200, description = "Sent; the acks", body = Broadcasted),
        (status = 400, description = "`invalid_json`, `invalid_request`: an empty or too long name, data over 64 KiB, a timeout over 60,000 ms", body = ErrorBody),
        (status = 404, description = "`not_found`: no such pool", body = ErrorBody),
        (status = 409, description = "`conflict`: the pool runs a process per job", body = ErrorBody),
    ))]
pub(crate) async fn broadcast(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: BroadcastRequest = parse_body(body)?;
    if body.name.is_empty() || body.name.len() > MAX_BROADCAST_NAME {
        return Err(ApiError::bad_request(format!(
            "name must be 1 to {MAX_BROADCAST_NAME} bytes, got {}",
            body.name.len()
        )));
    }
    let size = serde_json::to_vec(&body.data).map_or(usize::MAX, |v| v.len());
    if size > MAX_BROADCAST_DATA {
        return Err(ApiError::bad_request(format!(
            "data is {size} bytes of JSON, over the maximum of {MAX_BROADCAST_DATA}"
        )));
    }
    let timeout_ms = body.timeout_ms.unwrap_or(DEFAULT_BROADCAST_TIMEOUT_MS);
    if timeout_ms > MAX_BROADCAST_TIMEOUT_MS {
        return Err(ApiError::bad_request(format!(
            "timeout_ms {timeout_ms} is over the maximum of {MAX_BROADCAST_TIMEOUT_MS}"
        )));
    }
    let entry = app.engine.pool(&name).ok_or_else(|| no_pool(&name))?;
    let pool = entry.pool().ok_or_else(|| per_job(&name, "broadcast to"))?;
    let acks = pool
        .broadcast(&body.name, body.data, Duration::from_millis(timeout_ms))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json(
        StatusCode::OK,
        &Broadcasted {
            pool: name,
            name: body.name,
            acks: acks
                .into_iter()
                .map(|(pid, acked)| BroadcastAck { pid, acked })
                .collect(),
        },
    ))
}
