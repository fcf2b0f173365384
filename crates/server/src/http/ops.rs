//! Operations: workers, pools, resize, health, metrics, the OpenAPI document.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use offload_api::{
    self as api, ErrorBody, ErrorCode, Health, PoolKind, PoolList, Recycled, ResizeRequest,
    Resized, WorkerList,
};
use offload_store::JobState;

use super::{json, parse_body, App};
use crate::config::Isolation;
use crate::error::ApiError;
use crate::workers::WorkerView;

/// Worker health.
#[utoipa::path(get, path = "/v1/workers", operation_id = "list_workers", tag = "ops",
    responses((status = 200, description = "Workers", body = WorkerList)))]
pub(crate) async fn workers(State(app): State<Arc<App>>) -> Response {
    let workers = app.engine.workers().await.into_iter().map(worker).collect();
    json(StatusCode::OK, &WorkerList { workers })
}

fn worker(w: WorkerView) -> api::Worker {
    api::Worker {
        pool: w.pool,
        pid: w.pid,
        index: w.index,
        state: match w.state {
            offload_pool::WorkerState::Starting => api::WorkerState::Starting,
            offload_pool::WorkerState::Draining => api::WorkerState::Draining,
            offload_pool::WorkerState::Stopping => api::WorkerState::Stopping,
            _ => api::WorkerState::Ready,
        },
        rss: w.rss,
        cpu: w.cpu,
        heap_used: w.heap_used,
        heap_total: w.heap_total,
        in_flight: w.in_flight,
        jobs_done: w.jobs_done,
        failures: w.failures,
        restarts: w.restarts,
        uptime_ms: w.uptime_ms,
        last_error: w.last_error,
    }
}

/// Pools, with their jobs waiting and running.
#[utoipa::path(get, path = "/v1/pools", operation_id = "list_pools", tag = "ops",
    responses((status = 200, description = "Pools", body = PoolList)))]
pub(crate) async fn pools(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let counts = app.engine.store.counts().await?;
    let paused: std::collections::HashSet<String> = app
        .engine
        .paused_queues()
        .await?
        .into_iter()
        .filter(|p| p.queue.kind == offload_store::QueueKind::Pool)
        .map(|p| p.queue.name)
        .collect();
    let mut pools = Vec::new();
    for p in app.engine.pools() {
        let count = |st: JobState| counts.get(&(p.name.clone(), st)).copied().unwrap_or(0);
        let workers = p.pool().map_or(0, |pool| pool.pids().len());
        pools.push(api::Pool {
            name: p.name.clone(),
            kind: match p.kind {
                offload_process::JobKind::Node => PoolKind::Node,
                offload_process::JobKind::Python => PoolKind::Python,
                _ => PoolKind::Native,
            },
            isolation: match p.isolation() {
                Isolation::Pool => api::Isolation::Pool,
                Isolation::Process => api::Isolation::Process,
            },
            min: p.min(),
            max: p.max(),
            concurrency: p.concurrency(),
            workers,
            queued: count(JobState::Queued)
                + count(JobState::Scheduled)
                + count(JobState::Failed)
                + count(JobState::Waiting),
            running: count(JobState::Running),
            paused: paused.contains(&p.name),
            claim_ahead: p.claim_ahead(),
            held: p.held(),
        });
    }
    Ok(json(StatusCode::OK, &PoolList { pools }))
}

/// Set a pool's size.
#[utoipa::path(post, path = "/v1/pools/{name}/resize", operation_id = "resize_pool", tag = "ops",
    params(("name" = String, Path, description = "The pool's name")),
    request_body = ResizeRequest,
    responses(
        (status = 200, description = "Resized", body = Resized),
        (status = 400, description = "`invalid_json`, `invalid_request`: a size over max_workers_per_pool", body = ErrorBody),
        (status = 404, description = "`not_found`: no such pool", body = ErrorBody),
        (status = 409, description = "`conflict`: the pool runs a process per job", body = ErrorBody),
    ))]
pub(crate) async fn resize(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: ResizeRequest = parse_body(body)?;
    let size = body.size as usize;
    let cap = app.engine.config().limits.max_workers_per_pool;
    if size > cap {
        return Err(ApiError::bad_request(format!(
            "size {size} is over max_workers_per_pool = {cap} ([limits] in offload.toml)"
        )));
    }
    let entry = app
        .engine
        .pool(&name)
        .ok_or_else(|| ApiError::not_found(format!("no pool {name:?}")))?;
    let pool = entry.pool().ok_or_else(|| {
        ApiError::of(
            ErrorCode::Conflict,
            format!("pool {name:?} runs a process per job: nothing to resize"),
        )
    })?;
    pool.resize(size)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json(
        StatusCode::OK,
        &Resized {
            name,
            size: body.size,
        },
    ))
}

/// Replace every worker of a pool: each finishes its running jobs, then stops; its replacement
/// starts first (what hot reload does when job files change). For a worker that leaks memory,
/// or after changing what the workers load.
#[utoipa::path(post, path = "/v1/pools/{name}/recycle", operation_id = "recycle_pool", tag = "ops",
    params(("name" = String, Path, description = "The pool's name")),
    responses(
        (status = 200, description = "Recycling", body = Recycled),
        (status = 404, description = "`not_found`: no such pool", body = ErrorBody),
        (status = 409, description = "`conflict`: the pool runs a process per job", body = ErrorBody),
    ))]
pub(crate) async fn recycle(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let entry = app
        .engine
        .pool(&name)
        .ok_or_else(|| ApiError::not_found(format!("no pool {name:?}")))?;
    let pool = entry.pool().ok_or_else(|| {
        ApiError::of(
            ErrorCode::Conflict,
            format!("pool {name:?} runs a process per job: nothing to recycle"),
        )
    })?;
    let workers = u32::try_from(pool.pids().len()).unwrap_or(u32::MAX);
    pool.recycle_all()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json(StatusCode::OK, &Recycled { name, workers }))
}

/// Liveness (open without a token; answered even when every connection slot is taken).
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "ops",
    responses((status = 200, description = "OK", body = Health)))]
pub(crate) async fn healthz() -> Response {
    json(
        StatusCode::OK,
        &Health {
            status: "ok".into(),
        },
    )
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let counts = app.engine.store.counts().await?;
    let workers = app.engine.workers().await;
    let limits = app.engine.store.limits().await?;
    let mut text = app.engine.metrics.render(&counts, &workers);
    text.push_str(&crate::metrics::render_limits(&limits));
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", operation_id = "openapi", tag = "ops",
    responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
pub(crate) async fn openapi(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        app.openapi_json(),
    )
        .into_response()
}
