//! `/v1/cron…`: list, add, remove schedules.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use offload_api::{
    self as api, AddSchedule, ErrorBody, Schedule, ScheduleAdded, ScheduleList, ScheduleSource,
};
use offload_store::{now_ms, CronSchedule};

use super::{check_size, json, parse_body, App};
use crate::error::ApiError;

/// Every schedule, by name.
#[utoipa::path(get, path = "/v1/cron", operation_id = "list_schedules", tag = "cron",
    responses((status = 200, description = "Schedules", body = ScheduleList)))]
pub(crate) async fn list(State(app): State<Arc<App>>) -> Response {
    let schedules = app
        .cron
        .list()
        .into_iter()
        .map(|s| Schedule {
            name: s.name,
            cron: s.cron,
            job: s.job,
            params: s.params,
            missed: if s.missed == "run_once" {
                api::Missed::RunOnce
            } else {
                api::Missed::Skip
            },
            source: if s.source == "config" {
                ScheduleSource::Config
            } else {
                ScheduleSource::Api
            },
            next_at: s.next_at,
        })
        .collect();
    json(StatusCode::OK, &ScheduleList { schedules })
}

/// Add or replace a schedule (one of `offload.toml` cannot be replaced).
#[utoipa::path(post, path = "/v1/cron", operation_id = "add_schedule", tag = "cron",
    request_body = AddSchedule,
    responses(
        (status = 201, description = "Added", body = ScheduleAdded),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_cron` (a bad expression, or one that fires more often than min_cron_interval_ms)", body = ErrorBody),
        (status = 404, description = "`unknown_job`", body = ErrorBody),
        (status = 409, description = "`conflict`: over max_cron_schedules, or a schedule of offload.toml", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
    ))]
pub(crate) async fn add(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b: AddSchedule = parse_body(body)?;
    let chars = b.name.chars().count();
    if chars == 0 || chars > api::limits::MAX_SCHEDULE_NAME || b.name.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(
            "name must be 1..=128 printable characters",
        ));
    }
    let params = b.params.unwrap_or(serde_json::Value::Null);
    check_size(
        "params",
        &params,
        app.limits.max_params_bytes,
        "http.max_params_bytes",
    )?;
    let schedule = CronSchedule {
        name: b.name.clone(),
        cron: b.cron,
        job: b.job,
        params,
        missed: b.missed.unwrap_or_default().as_str().to_owned(),
        created_at: now_ms(),
    };
    let next_at = app.cron.put(&app.engine, schedule).await?;
    Ok(json(
        StatusCode::CREATED,
        &ScheduleAdded {
            name: b.name,
            next_at,
        },
    ))
}

/// Remove a schedule added by the API.
#[utoipa::path(delete, path = "/v1/cron/{name}", operation_id = "remove_schedule", tag = "cron",
    params(("name" = String, Path, description = "The schedule's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`: a schedule of offload.toml", body = ErrorBody),
    ))]
pub(crate) async fn remove(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    app.cron.delete(&app.engine, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
