//! `/v1/jobs…`: submit, batch, get, result, cancel, retry, list.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use offload_store::{CancelResult, JobId, JobState, ListFilter};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{json, parse_body, App};
use crate::engine::{Source, Submit};
use crate::error::ApiError;
use crate::events::JobChange;

/// The body of `POST /v1/jobs` (and each item of a batch).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitBody {
    job: String,
    #[serde(default)]
    params: Value,
    #[serde(default)]
    priority: i32,
    delay_ms: Option<u64>,
    run_at: Option<i64>,
    timeout_ms: Option<u64>,
    max_attempts: Option<u32>,
    idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchBody {
    jobs: Vec<SubmitBody>,
}

impl From<SubmitBody> for Submit {
    fn from(b: SubmitBody) -> Self {
        Self {
            job: b.job,
            params: b.params,
            priority: b.priority,
            delay_ms: b.delay_ms,
            run_at: b.run_at,
            timeout_ms: b.timeout_ms,
            max_attempts: b.max_attempts,
            idempotency_key: b.idempotency_key,
        }
    }
}

pub(crate) async fn submit(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: SubmitBody = parse_body(body)?;
    let d = app.engine.submit(Source::Http, body.into()).await?;
    if d.duplicate {
        Ok(json(
            StatusCode::OK,
            &json!({"id": d.id, "state": d.state, "duplicate": true}),
        ))
    } else {
        Ok(json(
            StatusCode::CREATED,
            &json!({"id": d.id, "state": d.state}),
        ))
    }
}

pub(crate) async fn batch(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: BatchBody = parse_body(body)?;
    if body.jobs.is_empty() || body.jobs.len() > 1000 {
        return Err(ApiError::bad_request("a batch holds 1 to 1,000 jobs"));
    }
    let jobs = body.jobs.into_iter().map(Submit::from).collect();
    let done = app.engine.submit_batch(Source::Http, jobs).await?;
    Ok(json(StatusCode::CREATED, &json!({ "jobs": done })))
}

fn parse_id(id: &str) -> Result<JobId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::not_found(format!("no job {id:?} (ids are UUIDs)")))
}

pub(crate) async fn get(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let rec = app.engine.store.get(parse_id(&id)?).await?;
    Ok(json(StatusCode::OK, &rec))
}

#[derive(Debug, Deserialize)]
pub(crate) struct WaitQuery {
    wait: Option<f64>,
}

pub(crate) async fn result(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let wait = q.wait.unwrap_or(0.0);
    if !wait.is_finite() || wait < 0.0 {
        return Err(ApiError::bad_request("wait is a number of seconds, 0..=60"));
    }
    // A long poll holds a slot (`http.max_long_polls`); a plain read does not.
    let _slot = if wait > 0.0 {
        let max = app.limits.max_long_polls;
        Some(Arc::clone(&app.long_polls).try_acquire_owned().map_err(|_| {
            app.engine.metrics.http_refused("too_many_long_polls");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_long_polls",
                format!("{max} long polls are waiting (http.max_long_polls); retry, or poll without wait"),
            )
        })?)
    } else {
        None
    };
    let rec = app
        .engine
        .wait_for_end(id, Duration::from_secs_f64(wait.min(60.0)))
        .await?;
    if rec.state.is_terminal() {
        Ok(json(
            StatusCode::OK,
            &json!({"id": rec.id, "state": rec.state, "result": rec.result, "error": rec.error}),
        ))
    } else {
        Ok(json(
            StatusCode::ACCEPTED,
            &json!({"id": rec.id, "state": rec.state, "progress": rec.progress}),
        ))
    }
}

pub(crate) async fn cancel(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let state = match app.engine.store.cancel(id).await? {
        CancelResult::Cancelled => {
            let rec = app.engine.store.get(id).await?;
            app.engine.announce(JobChange {
                id,
                job: rec.job,
                pool: rec.pool,
                state: JobState::Cancelled,
                attempt: rec.attempt,
            });
            JobState::Cancelled
        }
        CancelResult::Requested => {
            app.engine.cancel_running(id);
            // The kill takes a moment: answer with the state once it landed (or still running).
            app.engine
                .wait_for_end(id, Duration::from_secs(5))
                .await?
                .state
        }
        CancelResult::AlreadyDone(state) => state,
    };
    Ok(json(StatusCode::OK, &json!({"id": id, "state": state})))
}

pub(crate) async fn retry(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let state = app.engine.store.retry(id).await?;
    app.engine.notify();
    Ok(json(StatusCode::OK, &json!({"id": id, "state": state})))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    state: Option<String>,
    job: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    /// `params`, `result` or both (comma-separated): the heavy fields, left out unless asked.
    include: Option<String>,
}

/// Which heavy fields a list shows.
#[derive(Debug, Default, Clone, Copy)]
struct Include {
    params: bool,
    result: bool,
}

fn parse_include(s: Option<&str>) -> Result<Include, ApiError> {
    let mut inc = Include::default();
    for part in s
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
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

pub(crate) async fn list(
    State(app): State<Arc<App>>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let state = q
        .state
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<JobState>())
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let include = parse_include(q.include.as_deref())?;
    let mut page = app
        .engine
        .store
        .list(ListFilter {
            state,
            job: q.job.filter(|j| !j.is_empty()),
            limit: q.limit.unwrap_or(50).clamp(1, 1000),
            cursor: q.cursor.filter(|c| !c.is_empty()),
        })
        .await?;
    // Leave the heavy fields out unless asked: drop them before building the answer.
    for rec in &mut page.jobs {
        if !include.params {
            rec.params = Value::Null;
        }
        if !include.result {
            rec.result = None;
        }
    }
    let mut body = serde_json::to_value(&page).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(jobs) = body.get_mut("jobs").and_then(Value::as_array_mut) {
        for rec in jobs.iter_mut().filter_map(Value::as_object_mut) {
            if !include.params {
                rec.remove("params");
            }
            if !include.result {
                rec.remove("result");
            }
        }
    }
    Ok(json(StatusCode::OK, &body))
}
