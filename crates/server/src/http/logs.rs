//! `GET /v1/jobs/{id}/logs`: the stdout/stderr lines each attempt of a job printed, as the
//! engine captured them (`engine/logs.rs`), read from the store a page at a time.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use offload_api::{self as api, ErrorBody, JobLogs, LogsQuery};
use offload_store::{LogQuery, LogStream};

use super::jobs::parse_id;
use super::{json, parse_query, App};
use crate::error::ApiError;

/// A page of a job's log lines, checked and read: what the API and the dashboard show.
pub(crate) async fn read(app: &App, id: &str, q: LogsQuery) -> Result<JobLogs, ApiError> {
    let id = parse_id(id)?;
    let limit = q.limit.unwrap_or(api::DEFAULT_LOG_PAGE);
    if !(1..=api::MAX_LOG_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit {limit} is out of range: 1..={}",
            api::MAX_LOG_PAGE
        )));
    }
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(api::parse_log_cursor(c).ok_or_else(|| {
            ApiError::bad_request(format!(
                "cursor {c:?} is not valid: give a next_cursor or a line's <attempt>.<seq>"
            ))
        })?),
    };
    let job = app.engine.store.get(id).await?;
    if let Some(a) = q.attempt {
        if a == 0 {
            return Err(ApiError::bad_request(
                "attempt 0 is out of range: attempts are numbered from 1",
            ));
        }
        // A well-formed number the job does not have (yet): not found, as an unknown job.
        if a > job.attempt {
            return Err(ApiError::not_found(format!(
                "attempt {a} is out of range: the job has {} attempt(s) so far (1..={})",
                job.attempt, job.attempt
            )));
        }
    }
    let limit = limit as usize;
    let query = LogQuery {
        attempt: q.attempt,
        after,
        limit,
    };
    let lines: Vec<api::LogLine> = app
        .engine
        .store
        .logs(id, query)
        .await?
        .into_iter()
        .map(|l| api::LogLine {
            attempt: l.attempt,
            seq: l.seq,
            stream: match l.stream {
                LogStream::Stdout => api::LogStream::Stdout,
                LogStream::Stderr => api::LogStream::Stderr,
            },
            at: l.at,
            line: l.line,
            shared: l.shared,
            cut: l.marker,
        })
        .collect();
    let next_cursor = (lines.len() == limit)
        .then(|| lines.last().map(api::LogLine::cursor))
        .flatten();
    Ok(JobLogs {
        id,
        attempts: job.attempt,
        active: !job.state.is_terminal(),
        lines,
        next_cursor,
    })
}

/// A job's log: the lines its attempts printed to stdout and stderr, in order, each attempt
/// bounded (`[limits] max_log_bytes_per_attempt`, default 64 KiB; a cut log ends with a line
/// marked `cut`). Pool workers' lines are the job's they were running (`shared` when several
/// ran at once); lines between jobs are no job's. By default every attempt's lines, attempt
/// after attempt; `attempt=N` for one. A manual retry numbers the attempts on and keeps the
/// lines of the job's last `[limits] max_log_attempts_per_job` attempts (default 10), deleting
/// older ones.
#[utoipa::path(get, path = "/v1/jobs/{id}/logs", operation_id = "get_job_logs", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "The job's id"), LogsQuery),
    responses(
        (status = 200, description = "A page of lines", body = JobLogs),
        (status = 400, description = "`invalid_request`: `attempt` is 0, `limit` is not 1..=10000, or a bad `cursor`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such job, or no such attempt of it yet (`attempt` over the job's `attempt`)", body = ErrorBody),
    ))]
pub(crate) async fn logs(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    q: Result<Query<LogsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = parse_query(q)?;
    Ok(json(StatusCode::OK, &read(&app, &id, q).await?))
}
