//! Operations: workers, pools, resize, health, metrics, the OpenAPI document.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use offload_store::JobState;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{json, parse_body, App, OPENAPI};
use crate::config::Isolation;
use crate::error::ApiError;

/// A worker as `GET /v1/workers` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WorkerView {
    pub(crate) pool: String,
    pub(crate) pid: u32,
    pub(crate) index: usize,
    pub(crate) state: offload_pool::WorkerState,
    pub(crate) rss: u64,
    pub(crate) cpu: f64,
    pub(crate) in_flight: usize,
    pub(crate) jobs_done: u64,
    pub(crate) failures: u64,
    pub(crate) restarts: u32,
    pub(crate) uptime_ms: u64,
    pub(crate) last_error: Option<String>,
}

pub(crate) async fn worker_views(app: &App) -> Vec<WorkerView> {
    let mut out = Vec::new();
    for entry in app.engine.pools() {
        let Some(pool) = entry.pool() else { continue };
        let Ok(health) = pool.health().await else {
            continue;
        };
        out.extend(health.into_iter().map(|h| WorkerView {
            pool: entry.name.clone(),
            pid: h.pid,
            index: h.index,
            state: h.state,
            rss: h.rss,
            cpu: h.cpu,
            in_flight: h.in_flight,
            jobs_done: h.jobs_done,
            failures: h.failures,
            restarts: h.restarts,
            uptime_ms: u64::try_from(h.uptime.as_millis()).unwrap_or(u64::MAX),
            last_error: h.last_error,
        }));
    }
    out
}

pub(crate) async fn workers(State(app): State<Arc<App>>) -> Response {
    json(
        StatusCode::OK,
        &json!({"workers": worker_views(&app).await}),
    )
}

pub(crate) async fn pools(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let counts = app.engine.store.counts().await?;
    let mut pools = Vec::new();
    for p in app.engine.pools() {
        let count = |st: JobState| counts.get(&(p.name.clone(), st)).copied().unwrap_or(0);
        let workers = p.pool().map_or(0, |pool| pool.pids().len());
        pools.push(json!({
            "name": p.name,
            "kind": match p.kind {
                offload_process::JobKind::Node => "node",
                offload_process::JobKind::Python => "python",
                _ => "native",
            },
            "isolation": match p.isolation() { Isolation::Pool => "pool", Isolation::Process => "process" },
            "min": p.min(),
            "max": p.max(),
            "concurrency": p.concurrency(),
            "workers": workers,
            "queued": count(JobState::Queued) + count(JobState::Scheduled) + count(JobState::Failed),
            "running": count(JobState::Running),
        }));
    }
    Ok(json(StatusCode::OK, &json!({ "pools": pools })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResizeBody {
    size: usize,
}

pub(crate) async fn resize(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: ResizeBody = parse_body(body)?;
    let cap = app.engine.config().limits.max_workers_per_pool;
    if body.size > cap {
        return Err(ApiError::bad_request(format!(
            "size {} is over max_workers_per_pool = {cap} ([limits] in offload.toml)",
            body.size
        )));
    }
    let entry = app
        .engine
        .pool(&name)
        .ok_or_else(|| ApiError::not_found(format!("no pool {name:?}")))?;
    let pool = entry.pool().ok_or_else(|| {
        ApiError::bad_request(format!(
            "pool {name:?} runs a process per job: nothing to resize"
        ))
    })?;
    pool.resize(body.size)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json(
        StatusCode::OK,
        &json!({"name": name, "size": body.size}),
    ))
}

pub(crate) async fn healthz() -> Response {
    json(StatusCode::OK, &json!({"status": "ok"}))
}

pub(crate) async fn metrics(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let counts = app.engine.store.counts().await?;
    let workers = worker_views(&app).await;
    let text = app.engine.metrics.render(&counts, &workers);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

pub(crate) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
