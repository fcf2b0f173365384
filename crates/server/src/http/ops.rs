//! Operations: workers, pools, resize, health, metrics, the OpenAPI document.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use offload_store::JobState;
use serde::Deserialize;
use serde_json::json;

use super::{json, parse_body, App, OPENAPI};
use crate::config::Isolation;
use crate::error::ApiError;

pub(crate) async fn workers(State(app): State<Arc<App>>) -> Response {
    json(
        StatusCode::OK,
        &json!({"workers": app.engine.workers().await}),
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
    let workers = app.engine.workers().await;
    let text = app.engine.metrics.render(&counts, &workers);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

pub(crate) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
