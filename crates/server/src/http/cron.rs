//! `/v1/cron…`: list, add, remove schedules.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use offload_store::{now_ms, CronSchedule};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{check_size, json, parse_body, App};
use crate::error::ApiError;

pub(crate) async fn list(State(app): State<Arc<App>>) -> Response {
    json(StatusCode::OK, &json!({"schedules": app.cron.list()}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddBody {
    name: String,
    cron: String,
    job: String,
    #[serde(default)]
    params: Value,
    missed: Option<String>,
}

pub(crate) async fn add(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b: AddBody = parse_body(body)?;
    if b.name.is_empty() || b.name.len() > 128 || b.name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "name must be 1..=128 printable characters",
        ));
    }
    check_size(
        "params",
        &b.params,
        app.limits.max_params_bytes,
        "http.max_params_bytes",
    )?;
    let schedule = CronSchedule {
        name: b.name.clone(),
        cron: b.cron,
        job: b.job,
        params: b.params,
        missed: b.missed.unwrap_or_else(|| "skip".into()),
        created_at: now_ms(),
    };
    let next_at = app.cron.put(&app.engine, schedule).await?;
    Ok(json(
        StatusCode::CREATED,
        &json!({"name": b.name, "next_at": next_at}),
    ))
}

pub(crate) async fn remove(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    app.cron.delete(&app.engine, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
