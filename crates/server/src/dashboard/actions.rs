//! The `POST` actions. Each names its job, pool or schedule in its URL (a stale page can only
//! act on what it shows), goes through the JSON API's handler, and answers with a message for
//! the page's `#flash` region: what was done, or why the API refused. A success also asks the
//! page's live parts to refresh (`HX-Trigger: dash-refresh`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use offload_api::{
    BulkDelete, BulkDone, BulkRetry, FinishedState, JobDeleted, JobStateView, QueueKind,
    QueueStatus, Recycled, ResizeRequest, Resized, RetryableState, Submitted,
};
use serde::Deserialize;

use super::call::{call, decode};
use super::query::{parse_time, JobsQuery};
use super::Dash;
use crate::error::ApiError;
use crate::http::{bulk, cron, jobs, ops, queues};

/// The message of a done action.
fn done(text: String) -> Response {
    let mut resp = html! { p.notice.ok role="status" { (text) } }.into_response();
    resp.headers_mut()
        .insert("hx-trigger", HeaderValue::from_static("dash-refresh"));
    resp
}

/// The message of a refused action, with the API's status and reason.
fn refused(what: &str, e: &ApiError) -> Response {
    let code = serde_json::to_value(e.code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    (
        e.status,
        html! { p.notice.error role="alert" { (what) " was refused: " (e.message) " (" (e.status.as_u16()) " " (code) ")" } },
    )
        .into_response()
}

fn outcome<T>(what: &str, r: Result<T, ApiError>, ok: impl FnOnce(T) -> String) -> Response {
    match r {
        Ok(v) => done(ok(v)),
        Err(e) => refused(what, &e),
    }
}

/// Cancel the job named in the URL.
pub(crate) async fn cancel(State(dash): State<Arc<Dash>>, Path(id): Path<String>) -> Response {
    let r: Result<JobStateView, _> =
        call(jobs::cancel(State(Arc::clone(&dash.app)), Path(id.clone()))).await;
    outcome("Cancel", r, |v| {
        format!("Job {} is {} now.", v.id, v.state.as_str())
    })
}

/// Retry the job named in the URL.
pub(crate) async fn retry(State(dash): State<Arc<Dash>>, Path(id): Path<String>) -> Response {
    let r: Result<JobStateView, _> =
        call(jobs::retry(State(Arc::clone(&dash.app)), Path(id.clone()))).await;
    outcome("Retry", r, |v| {
        format!("Job {} is {} again.", v.id, v.state.as_str())
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct SizeForm {
    size: String,
}

/// Resize the pool named in the URL to the form's size.
pub(crate) async fn resize(
    State(dash): State<Arc<Dash>>,
    Path(name): Path<String>,
    form: Result<Form<SizeForm>, FormRejection>,
) -> Response {
    let Some(size) = form
        .ok()
        .and_then(|Form(f)| f.size.trim().parse::<u32>().ok())
    else {
        return refused(
            "Resize",
            &ApiError::bad_request("size must be a whole number of workers"),
        );
    };
    let body = Bytes::from(serde_json::to_vec(&ResizeRequest { size }).unwrap_or_default());
    let r: Result<Resized, _> = call(ops::resize(
        State(Arc::clone(&dash.app)),
        Path(name),
        Ok(body),
    ))
    .await;
    outcome("Resize", r, |v| {
        format!("Pool {} is resizing to {} workers.", v.name, v.size)
    })
}

async fn schedule_op(what: &str, name: &str, r: Result<Response, ApiError>, ok: &str) -> Response {
    let r: Result<(), ApiError> = match r {
        Ok(resp) if resp.status() == StatusCode::NO_CONTENT => Ok(()),
        Ok(resp) => decode::<serde_json::Value>(resp).await.map(|_| ()),
        Err(e) => Err(e),
    };
    outcome(what, r, |()| format!("Schedule {name} {ok}."))
}

/// Pause the schedule named in the URL.
pub(crate) async fn pause_schedule(
    State(dash): State<Arc<Dash>>,
    Path(name): Path<String>,
) -> Response {
    let r = cron::pause(State(Arc::clone(&dash.app)), Path(name.clone())).await;
    schedule_op("Pause", &name, r, "is paused").await
}

/// Resume the schedule named in the URL.
pub(crate) async fn resume_schedule(
    State(dash): State<Arc<Dash>>,
    Path(name): Path<String>,
) -> Response {
    let r = cron::resume(State(Arc::clone(&dash.app)), Path(name.clone())).await;
    schedule_op("Resume", &name, r, "is active again").await
}

/// Submit the schedule's job now.
pub(crate) async fn run_schedule(
    State(dash): State<Arc<Dash>>,
    Path(name): Path<String>,
) -> Response {
    let r: Result<Submitted, _> =
        call(cron::run(State(Arc::clone(&dash.app)), Path(name.clone()))).await;
    outcome("Run now", r, |v| {
        format!("Schedule {name} submitted job {}.", v.id)
    })
}

/// Delete the job named in the URL (a running one is refused: cancel it first).
pub(crate) async fn delete(State(dash): State<Arc<Dash>>, Path(id): Path<String>) -> Response {
    let r: Result<JobDeleted, _> = call(bulk::delete(State(Arc::clone(&dash.app)), Path(id))).await;
    outcome("Delete", r, |v| {
        format!("Job {} ({}) is deleted.", v.id, v.state.as_str())
    })
}

/// The dead page's filters as the bulk calls take them: (job, since, until).
type Filter = (Option<String>, Option<i64>, Option<i64>);

fn filter(q: &JobsQuery) -> Result<Filter, ApiError> {
    // The bulk calls have no schedule filter: acting on more jobs than the page shows is
    // refused rather than done.
    if JobsQuery::field(q.schedule.as_ref()).is_some() {
        return Err(ApiError::bad_request(
            "schedule: the bulk actions do not filter by schedule; clear the Schedule field first"
                .to_owned(),
        ));
    }
    Ok((
        JobsQuery::field(q.job.as_ref()).map(str::to_owned),
        parse_time("since", JobsQuery::field(q.since.as_ref()))?,
        parse_time("until", JobsQuery::field(q.until.as_ref()))?,
    ))
}

fn matching(what: &str, r: Result<BulkDone, ApiError>, verb: &str) -> Response {
    outcome(what, r, |d| {
        let more = if d.more {
            " More match: press again for the next batch."
        } else {
            ""
        };
        format!("{} dead job(s) {verb}.{more}", d.affected)
    })
}

/// Retry every dead job matching the page's filters (the query string the page shows).
pub(crate) async fn retry_matching(
    State(dash): State<Arc<Dash>>,
    Query(q): Query<JobsQuery>,
) -> Response {
    bulk_matching(&dash, &q, true).await
}

/// Delete every dead job matching the page's filters.
pub(crate) async fn delete_matching(
    State(dash): State<Arc<Dash>>,
    Query(q): Query<JobsQuery>,
) -> Response {
    bulk_matching(&dash, &q, false).await
}

/// One bulk call (retry, else delete) on the dead jobs the filters match.
async fn bulk_matching(dash: &Dash, q: &JobsQuery, retry: bool) -> Response {
    let what = if retry {
        "Retry all matching"
    } else {
        "Delete all matching"
    };
    let (job, since, until) = match filter(q) {
        Ok(f) => f,
        Err(e) => return refused(what, &e),
    };
    let app = State(Arc::clone(&dash.app));
    let r = if retry {
        let body = BulkRetry {
            states: vec![RetryableState::Dead],
            job,
            pool: None,
            since,
            until,
            limit: None,
        };
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        call(bulk::retry_many(app, Ok(body))).await
    } else {
        let body = BulkDelete {
            states: vec![FinishedState::Dead],
            job,
            pool: None,
            since,
            until,
            limit: None,
        };
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        call(bulk::delete_many(app, Ok(body))).await
    };
    matching(what, r, if retry { "queued again" } else { "deleted" })
}

fn queue_done(v: QueueStatus) -> String {
    let what = match v.kind {
        QueueKind::Pool => format!("Pool {}", v.name),
        QueueKind::Job => format!("Job name {}", v.name),
    };
    match (v.paused, v.changed) {
        (true, true) => format!("{what} is paused: its jobs stay queued and none starts."),
        (true, false) => format!("{what} was paused already."),
        (false, true) => format!("{what} is running again."),
        (false, false) => format!("{what} was not paused."),
    }
}

/// The form of "pause a job name".
#[derive(Debug, Deserialize)]
pub(crate) struct JobNameForm {
    job: String,
}

/// Pause the job name of the form (every job of that name, in whatever pool).
pub(crate) async fn pause_job_queue(
    State(dash): State<Arc<Dash>>,
    form: Result<Form<JobNameForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return refused(
            "Pause",
            &ApiError::bad_request("job: a job name is required".to_owned()),
        );
    };
    let job = form.job.trim().to_owned();
    if job.is_empty() {
        return refused(
            "Pause",
            &ApiError::bad_request("job: a job name is required".to_owned()),
        );
    }
    let r = call(queues::pause_job(State(Arc::clone(&dash.app)), Path(job))).await;
    outcome("Pause", r, queue_done)
}

/// Resume the job name in the URL.
pub(crate) async fn resume_job_queue(
    State(dash): State<Arc<Dash>>,
    Path(job): Path<String>,
) -> Response {
    let r = call(queues::resume_job(State(Arc::clone(&dash.app)), Path(job))).await;
    outcome("Resume", r, queue_done)
}

/// Replace every worker of the pool named in the URL.
pub(crate) async fn recycle_pool(
    State(dash): State<Arc<Dash>>,
    Path(name): Path<String>,
) -> Response {
    let r: Result<Recycled, _> = call(ops::recycle(State(Arc::clone(&dash.app)), Path(name))).await;
    outcome("Recycle", r, |v| {
        format!(
            "Pool {}: its {} worker(s) are being replaced, each once its running jobs end.",
            v.name, v.workers
        )
    })
}

/// Pause the pool named in the URL (on every node of a shared store; survives restarts).
pub(crate) async fn pause_pool(
    State(dash): State<Arc<Dash>>,
    Path(name): Path<String>,
) -> Response {
    let r = call(queues::pause_pool(State(Arc::clone(&dash.app)), Path(name))).await;
    outcome("Pause", r, queue_done)
}

/// Resume the pool named in the URL.
pub(crate) async fn resume_pool(
    State(dash): State<Arc<Dash>>,
    Path(name): Path<String>,
) -> Response {
    let r = call(queues::resume_pool(
        State(Arc::clone(&dash.app)),
        Path(name),
    ))
    .await;
    outcome("Resume", r, queue_done)
}
