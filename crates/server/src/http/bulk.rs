//! Deleting one job (`DELETE /v1/jobs/{id}`) and retrying or deleting many by a filter
//! (`POST /v1/jobs/retry`, `POST /v1/jobs/delete`): at most 10,000 jobs a request
//! (`offload_store::bulk::MAX_BULK`), all or none, the answer says whether more match.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use offload_api::RetryableState;
use offload_api::{BulkDelete, BulkDone, BulkRetry, ErrorBody, FinishedState, JobDeleted};
use offload_store::bulk::MAX_BULK;
use offload_store::{BulkAction, JobFilter, JobState};

use super::jobs::{parse_id, state};
use super::{json, parse_body, App};
use crate::error::ApiError;

/// Delete a job that is not running, with its attempts. A running job is refused: cancel it
/// first (its attempt ends and is recorded), then delete it.
#[utoipa::path(delete, path = "/v1/jobs/{id}", operation_id = "delete_job", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "The job's id")),
    responses(
        (status = 200, description = "Deleted; the state it had", body = JobDeleted),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`: the job is running (cancel it first)", body = ErrorBody),
    ))]
pub(crate) async fn delete(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let was = app.engine.store.delete(id).await?;
    Ok(json(
        StatusCode::OK,
        &JobDeleted {
            id,
            state: state(was),
        },
    ))
}

/// `since`/`until`: ms since the epoch, 0 ..= year 9999 (`offload_store::limits::MAX_RUN_AT`).
fn time(field: &str, t: Option<i64>) -> Result<Option<i64>, ApiError> {
    let max = offload_store::limits::MAX_RUN_AT;
    match t {
        Some(v) if !(0..=max).contains(&v) => Err(ApiError::bad_request(format!(
            "{field} {v} is out of range: 0..={max} (ms since the epoch)"
        ))),
        _ => Ok(t),
    }
}

/// A list of at most `max` items (the document's `maxItems`).
fn at_most(field: &str, n: usize, max: usize) -> Result<(), ApiError> {
    if n > max {
        return Err(ApiError::bad_request(format!(
            "{field} has {n} items: at most {max}"
        )));
    }
    Ok(())
}

fn limit(given: Option<u32>) -> usize {
    given.map_or(MAX_BULK, |n| n as usize)
}

/// Queue dead or cancelled jobs again, by a filter, each with a fresh round of attempts
/// (numbered on after the earlier ones, whose history and logs stay).
#[utoipa::path(post, path = "/v1/jobs/retry", operation_id = "retry_jobs", tag = "jobs",
    request_body = BulkRetry,
    responses(
        (status = 200, description = "How many were queued, and whether more match", body = BulkDone),
        (status = 400, description = "`invalid_json`, `invalid_request`: a limit over 10000", body = ErrorBody),
    ))]
pub(crate) async fn retry_many(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b: BulkRetry = parse_body(body)?;
    at_most("states", b.states.len(), 2)?;
    let filter = JobFilter {
        states: b
            .states
            .iter()
            .map(|s| match s {
                RetryableState::Dead => JobState::Dead,
                RetryableState::Cancelled => JobState::Cancelled,
            })
            .collect(),
        job: b.job,
        pool: b.pool,
        since: time("since", b.since)?,
        until: time("until", b.until)?,
    };
    let done = app
        .engine
        .store
        .bulk(BulkAction::Retry, &filter, limit(b.limit))
        .await?;
    if done.affected > 0 {
        app.engine.notify();
    }
    Ok(json(
        StatusCode::OK,
        &BulkDone {
            affected: done.affected,
            more: done.more,
        },
    ))
}

/// Delete finished jobs (succeeded, dead, cancelled), by a filter, with their attempts.
#[utoipa::path(post, path = "/v1/jobs/delete", operation_id = "delete_jobs", tag = "jobs",
    request_body = BulkDelete,
    responses(
        (status = 200, description = "How many were deleted, and whether more match", body = BulkDone),
        (status = 400, description = "`invalid_json`, `invalid_request`: a limit over 10000", body = ErrorBody),
    ))]
pub(crate) async fn delete_many(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b: BulkDelete = parse_body(body)?;
    at_most("states", b.states.len(), 3)?;
    let filter = JobFilter {
        states: b
            .states
            .iter()
            .map(|s| match s {
                FinishedState::Succeeded => JobState::Succeeded,
                FinishedState::Dead => JobState::Dead,
                FinishedState::Cancelled => JobState::Cancelled,
            })
            .collect(),
        job: b.job,
        pool: b.pool,
        since: time("since", b.since)?,
        until: time("until", b.until)?,
    };
    let done = app
        .engine
        .store
        .bulk(BulkAction::Delete, &filter, limit(b.limit))
        .await?;
    Ok(json(
        StatusCode::OK,
        &BulkDone {
            affected: done.affected,
            more: done.more,
        },
    ))
}
