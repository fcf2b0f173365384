//! `/v1/cron…`: list, add, remove, pause, resume and run schedules.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use offload_api::{
    self as api, AddSchedule, ErrorBody, Schedule, ScheduleAdded, ScheduleCounters, ScheduleList,
    SchedulePause, ScheduleSource,
};
use offload_store::{now_ms, CronSchedule};

use super::jobs::submitted;
use super::{check_size, json, parse_body, App};
use crate::cron::ScheduleView;
use crate::error::ApiError;

/// Every schedule, by name.
#[utoipa::path(get, path = "/v1/cron", operation_id = "list_schedules", tag = "cron",
    responses((status = 200, description = "Schedules", body = ScheduleList)))]
pub(crate) async fn list(State(app): State<Arc<App>>) -> Response {
    let schedules = app.cron.list().into_iter().map(view).collect();
    json(StatusCode::OK, &ScheduleList { schedules })
}

fn view(v: ScheduleView) -> Schedule {
    let s = v.schedule;
    let state = v.state.unwrap_or_default();
    Schedule {
        name: s.name,
        cron: s.cron,
        job: s.job,
        params: s.params,
        missed: if s.missed == "run_once" {
            api::Missed::RunOnce
        } else {
            api::Missed::Skip
        },
        source: if v.source == "config" {
            ScheduleSource::Config
        } else {
            ScheduleSource::Api
        },
        next_at: v.next_at,
        overlap: match s.overlap.as_str() {
            "queue" => api::Overlap::Queue,
            "replace" => api::Overlap::Replace,
            _ => api::Overlap::Skip,
        },
        pause_after_failures: s.pause_after_failures,
        timezone: s.timezone,
        jitter_ms: s.jitter_ms,
        failure_backoff_ms: s.failure_backoff_ms,
        failure_backoff_max_ms: s.failure_backoff_max_ms,
        paused: state.paused_at.map(|at| SchedulePause {
            at,
            reason: state.paused_reason.clone().unwrap_or_default(),
        }),
        counters: ScheduleCounters {
            runs: state.runs,
            consecutive_failures: state.consecutive_failures,
            last_success_at: state.last_success_at,
            last_failure_at: state.last_failure_at,
            last_error: state.last_error,
            active: state.active,
        },
    }
}

/// Add or replace a schedule (one of `offload.toml` cannot be replaced).
#[utoipa::path(post, path = "/v1/cron", operation_id = "add_schedule", tag = "cron",
    request_body = AddSchedule,
    responses(
        (status = 201, description = "Added", body = ScheduleAdded),
        (status = 400, description = "`invalid_json`, `invalid_request` (a bad `name`, `overlap`, `pause_after_failures` or `timezone`, named in the message), `invalid_cron` (a bad expression, or one that fires more often than min_cron_interval_ms)", body = ErrorBody),
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
        overlap: b.overlap.unwrap_or_else(|| "skip".into()),
        pause_after_failures: b
            .pause_after_failures
            .map(|n| {
                u32::try_from(n).map_err(|_| {
                    ApiError::bad_request(format!(
                        "pause_after_failures: {n} is not in 1..={}",
                        offload_schedule::policy::MAX_PAUSE_AFTER_FAILURES
                    ))
                })
            })
            .transpose()?,
        timezone: b.timezone,
        jitter_ms: b.jitter_ms,
        failure_backoff_ms: b.failure_backoff_ms,
        failure_backoff_max_ms: b.failure_backoff_max_ms,
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

/// Pause a schedule (of either source): no tick fires until it is resumed, on any node.
#[utoipa::path(post, path = "/v1/cron/{name}/pause", operation_id = "pause_schedule", tag = "cron",
    params(("name" = String, Path, description = "The schedule's name")),
    responses(
        (status = 204, description = "Paused"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub(crate) async fn pause(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    app.cron.pause(&app.engine, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Resume a paused schedule; its count of consecutive failures starts afresh.
#[utoipa::path(post, path = "/v1/cron/{name}/resume", operation_id = "resume_schedule", tag = "cron",
    params(("name" = String, Path, description = "The schedule's name")),
    responses(
        (status = 204, description = "Resumed (or was not paused)"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub(crate) async fn resume(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    app.cron.resume(&app.engine, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Submit the schedule's job now, as a tick at this time, whether it is paused or a run is
/// unfinished (an explicit request; it counts as a run).
#[utoipa::path(post, path = "/v1/cron/{name}/run", operation_id = "run_schedule", tag = "cron",
    params(("name" = String, Path, description = "The schedule's name")),
    responses(
        (status = 201, description = "Submitted", body = api::Submitted),
        (status = 404, description = "`not_found`, `unknown_job`", body = ErrorBody),
        (status = 429, description = "`queue_full`: admission control", body = ErrorBody),
    ))]
pub(crate) async fn run(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let done = app.cron.run_now(&app.engine, &name).await?;
    Ok(json(StatusCode::CREATED, &submitted(&done)))
}
