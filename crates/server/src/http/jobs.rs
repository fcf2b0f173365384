//! `/v1/jobs…`: submit, batch, get, result, cancel, retry, list.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use offload_api::{
    self as api, BatchRequest, BatchSubmitted, ErrorBody, ErrorCode, JobPage, JobPending,
    JobResult, JobStateView, ListQuery, SubmitRequest, WaitQuery,
};
use offload_store::{CancelResult, JobId, JobRecord, JobState, ListFilter};

use super::{json, parse_body, parse_query, App};
use crate::engine::{Source, Submit};
use crate::error::ApiError;

/// A store state as the API names it.
pub(crate) fn state(s: JobState) -> api::JobState {
    match s {
        JobState::Scheduled => api::JobState::Scheduled,
        JobState::Queued => api::JobState::Queued,
        JobState::Running => api::JobState::Running,
        JobState::Succeeded => api::JobState::Succeeded,
        JobState::Failed => api::JobState::Failed,
        JobState::Dead => api::JobState::Dead,
        JobState::Cancelled => api::JobState::Cancelled,
        JobState::Waiting => api::JobState::Waiting,
    }
}

fn store_state(s: api::JobState) -> JobState {
    JobState::ALL
        .into_iter()
        .find(|st| st.as_str() == s.as_str())
        .unwrap_or(JobState::Queued)
}

fn job_error(e: offload_store::StoredError) -> api::JobError {
    api::JobError {
        name: e.name,
        message: e.message,
        stack: e.stack,
        retry: e.retry,
    }
}

/// A stored job as the API shows it (`params` and `result` as given: lists leave them out).
fn job_view(r: JobRecord, params: bool, result: bool) -> api::Job {
    api::Job {
        id: r.id,
        job: r.job,
        pool: r.pool,
        params: params.then_some(r.params),
        state: state(r.state),
        priority: r.priority,
        run_at: r.run_at,
        created_at: r.created_at,
        updated_at: r.updated_at,
        attempt: r.attempt,
        max_attempts: r.max_attempts,
        timeout_ms: r.timeout_ms,
        backoff_ms: r.backoff_ms,
        backoff: crate::backoff::to_api(r.backoff),
        keep_result_ms: r.keep_result_ms,
        idempotency_key: r.idempotency_key,
        progress: r.progress,
        result: result.then(|| r.result.unwrap_or(serde_json::Value::Null)),
        error: r.error.map(job_error),
        cancel_requested: r.cancel_requested,
        node: r.node,
        lease_until: r.lease_until,
        schedule: r.schedule,
        held: None,
        after_policy: (!r.after.is_empty()).then_some(match r.after_policy {
            offload_store::AfterPolicy::Succeeded => api::AfterPolicy::Succeeded,
            offload_store::AfterPolicy::Always => api::AfterPolicy::Always,
        }),
        after: r.after,
        waiting_on: r.waiting_on,
        attempts: r
            .attempts
            .into_iter()
            .map(|a| api::Attempt {
                attempt: a.attempt,
                node: a.node,
                pid: a.pid,
                started_at: a.started_at,
                ended_at: a.ended_at,
                outcome: a.outcome,
                error: a.error.map(job_error),
            })
            .collect(),
    }
}

pub(super) fn submitted(d: &offload_store::Submitted) -> api::Submitted {
    api::Submitted {
        id: d.id,
        state: state(d.state),
        duplicate: d.duplicate,
    }
}

impl From<SubmitRequest> for Submit {
    fn from(b: SubmitRequest) -> Self {
        Self {
            job: b.job,
            params: b.params.unwrap_or(serde_json::Value::Null),
            priority: b.priority.unwrap_or(0),
            delay_ms: b.delay_ms,
            run_at: b.run_at,
            timeout_ms: b.timeout_ms,
            max_attempts: b.max_attempts,
            idempotency_key: b.idempotency_key,
            backoff: b.backoff.as_ref().map(crate::backoff::to_store),
            keep_result_ms: b.keep_result_ms,
            key_ttl_ms: b.key_ttl_ms,
            unique: b.unique.is_some(),
            after: b.after.unwrap_or_default(),
            after_policy: match b.after_policy {
                Some(api::AfterPolicy::Always) => offload_store::AfterPolicy::Always,
                _ => offload_store::AfterPolicy::Succeeded,
            },
        }
    }
}

/// Submit a job: the answer comes once it is committed.
#[utoipa::path(post, path = "/v1/jobs", operation_id = "submit_job", tag = "jobs",
    request_body = SubmitRequest,
    responses(
        (status = 201, description = "Committed", body = api::Submitted),
        (status = 200, description = "A duplicate: the idempotency key's first job, or the unfinished job of a `unique` submit", body = api::Submitted),
        (status = 400, description = "`invalid_json`, `invalid_request`: a field out of its range", body = ErrorBody),
        (status = 404, description = "`unknown_job`: no such job file", body = ErrorBody),
        (status = 409, description = "`conflict`: the idempotency key names another job", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body or `params` over its limit", body = ErrorBody),
        (status = 429, description = "`queue_full`: admission control", body = ErrorBody),
    ))]
pub(crate) async fn submit(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: SubmitRequest = parse_body(body)?;
    let d = app.engine.submit(Source::Http, body.into()).await?;
    let d = &d;
    let status = if d.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json(status, &submitted(d)))
}

/// Submit up to 1,000 jobs in one transaction: any invalid job refuses the whole batch.
#[utoipa::path(post, path = "/v1/jobs/batch", operation_id = "submit_batch", tag = "jobs",
    request_body = BatchRequest,
    responses(
        (status = 201, description = "Committed, in order", body = BatchSubmitted),
        (status = 400, description = "`invalid_json`, `invalid_request` (naming the job's index)", body = ErrorBody),
        (status = 404, description = "`unknown_job` (naming the job's index)", body = ErrorBody),
        (status = 409, description = "`conflict`: an idempotency key names another job", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 429, description = "`queue_full`: admission control (the batch is refused whole)", body = ErrorBody),
    ))]
pub(crate) async fn batch(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: BatchRequest = parse_body(body)?;
    if body.jobs.is_empty() || body.jobs.len() > api::limits::MAX_BATCH {
        return Err(ApiError::bad_request("a batch holds 1 to 1,000 jobs"));
    }
    let jobs = body.jobs.into_iter().map(Submit::from).collect();
    let done = app.engine.submit_batch(Source::Http, jobs).await?;
    let jobs = done.iter().map(submitted).collect();
    Ok(json(StatusCode::CREATED, &BatchSubmitted { jobs }))
}

pub(crate) fn parse_id(id: &str) -> Result<JobId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::not_found(format!("no job {id:?} (ids are UUIDs)")))
}

/// A job with its attempts.
#[utoipa::path(get, path = "/v1/jobs/{id}", operation_id = "get_job", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "The job's id")),
    responses(
        (status = 200, description = "The job", body = api::Job),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub(crate) async fn get(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let rec = app.engine.store.get(parse_id(&id)?).await?;
    let held = if rec.state == JobState::Queued {
        let limits = app.engine.store.limits().await?;
        super::limits::held(&limits, rec.state, &rec.job, &rec.pool)
    } else {
        None
    };
    let mut view = job_view(rec, true, true);
    view.held = held;
    Ok(json(StatusCode::OK, &view))
}

/// The outcome, waiting up to `wait` seconds for it (a long poll).
#[utoipa::path(get, path = "/v1/jobs/{id}/result", operation_id = "get_result", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "The job's id"), WaitQuery),
    responses(
        (status = 200, description = "Over", body = JobResult),
        (status = 202, description = "Not over yet", body = JobPending),
        (status = 400, description = "`invalid_request`: `wait` is not 0..=60", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 503, description = "`too_many_long_polls` (or `too_many_connections`)", body = ErrorBody),
    ))]
pub(crate) async fn result(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    q: Result<Query<WaitQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let q = parse_query(q)?;
    let wait = q.wait.unwrap_or(0.0);
    if !wait.is_finite() || !(0.0..=api::limits::MAX_WAIT_SECS).contains(&wait) {
        return Err(ApiError::bad_request("wait is a number of seconds, 0..=60"));
    }
    // A long poll holds a slot (`http.max_long_polls`); a plain read does not.
    let _slot = if wait > 0.0 {
        let max = app.limits.max_long_polls;
        Some(Arc::clone(&app.long_polls).try_acquire_owned().map_err(|_| {
            app.engine.metrics.http_refused("too_many_long_polls");
            ApiError::of(
                ErrorCode::TooManyLongPolls,
                format!("{max} long polls are waiting (http.max_long_polls); retry, or poll without wait"),
            )
        })?)
    } else {
        None
    };
    let rec = app
        .engine
        .wait_for_end(id, Duration::from_secs_f64(wait))
        .await?;
    if rec.state.is_terminal() {
        let body = JobResult {
            id: rec.id,
            state: state(rec.state),
            result: rec.result,
            error: rec.error.map(job_error),
        };
        Ok(json(StatusCode::OK, &body))
    } else {
        let body = JobPending {
            id: rec.id,
            state: state(rec.state),
            progress: rec.progress,
        };
        Ok(json(StatusCode::ACCEPTED, &body))
    }
}

/// Cancel: a waiting job at once, a running one is killed. A finished job keeps its state.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", operation_id = "cancel_job", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "The job's id")),
    responses(
        (status = 200, description = "The state now", body = JobStateView),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub(crate) async fn cancel(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let st = match app.engine.cancel(id).await? {
        CancelResult::Cancelled => JobState::Cancelled,
        CancelResult::Requested => {
            // The kill takes a moment: answer with the state once it landed (or still running).
            app.engine
                .wait_for_end(id, Duration::from_secs(5))
                .await?
                .state
        }
        CancelResult::AlreadyDone(st) => st,
    };
    let body = JobStateView {
        id,
        state: state(st),
    };
    Ok(json(StatusCode::OK, &body))
}

/// A `dead` or `cancelled` job back to `queued`, with a fresh round of attempts (numbered on after the earlier ones, whose history and logs stay).
#[utoipa::path(post, path = "/v1/jobs/{id}/retry", operation_id = "retry_job", tag = "jobs",
    params(("id" = String, Path, format = Uuid, description = "The job's id")),
    responses(
        (status = 200, description = "Queued", body = JobStateView),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`: the job is not dead or cancelled, or has had 1,000 attempts (the most one job may have)", body = ErrorBody),
    ))]
pub(crate) async fn retry(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let st = app.engine.store.retry(id).await?;
    app.engine.notify();
    let body = JobStateView {
        id,
        state: state(st),
    };
    Ok(json(StatusCode::OK, &body))
}

/// Which heavy fields a list shows.
#[derive(Debug, Default, Clone, Copy)]
struct Include {
    params: bool,
    result: bool,
}

/// `params`, `result` or both, comma-separated (exactly the documented pattern).
fn parse_include(s: Option<&str>) -> Result<Include, ApiError> {
    let mut inc = Include::default();
    let Some(s) = s else { return Ok(inc) };
    for part in s.split(',') {
        match part {
            "params" => inc.params = true,
            "result" => inc.result = true,
            other => {
                return Err(ApiError::bad_request(format!(
                    "include: {:?} is not params or result",
                    other.chars().take(64).collect::<String>()
                )))
            }
        }
    }
    Ok(inc)
}

/// Jobs, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/jobs", operation_id = "list_jobs", tag = "jobs",
    params(ListQuery),
    responses(
        (status = 200, description = "A page", body = JobPage),
        (status = 400, description = "`invalid_request`: a bad filter, limit, cursor or include", body = ErrorBody),
    ))]
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = parse_query(q)?;
    let include = parse_include(q.include.as_deref())?;
    let limit = q.limit.unwrap_or(api::limits::DEFAULT_PAGE);
    if !(1..=api::limits::MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit {limit} is out of range: 1..={}",
            api::limits::MAX_PAGE
        )));
    }
    for (field, at) in [("since", q.since), ("until", q.until)] {
        if at.is_some_and(|at| !(0..=api::limits::MAX_TIME_MS).contains(&at)) {
            return Err(ApiError::bad_request(format!(
                "{field}: out of range 0..={} (Unix milliseconds)",
                api::limits::MAX_TIME_MS
            )));
        }
    }
    let page = app
        .engine
        .store
        .list(ListFilter {
            state: q.state.map(store_state),
            job: q.job.filter(|j| !j.is_empty()),
            schedule: q.schedule.filter(|s| !s.is_empty()),
            since: q.since,
            until: q.until,
            limit: limit as usize,
            cursor: q.cursor.map(|c| c.to_string()),
        })
        .await?;
    let limits = if page.jobs.iter().any(|j| j.state == JobState::Queued) {
        app.engine.store.limits().await?
    } else {
        Vec::new()
    };
    let body = JobPage {
        jobs: page
            .jobs
            .into_iter()
            .map(|r| {
                let held = super::limits::held(&limits, r.state, &r.job, &r.pool);
                let mut view = job_view(r, include.params, include.result);
                view.held = held;
                view
            })
            .collect(),
        next_cursor: page.next_cursor,
    };
    Ok(json(StatusCode::OK, &body))
}
