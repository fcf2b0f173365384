//! The `GET` pages and the partials they refresh themselves with. Each reads through the JSON
//! API's handlers (`call.rs`) and hands `offload_api` types to the views.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::Markup;
use offload_api::{
    ErrorCode, EventsQuery, Job, JobPage, JobState, ListQuery, PausedQueueList, PoolList,
    ScheduleList, WorkerList,
};
use offload_store::now_ms;

use super::auth::{failed, refusal};
use super::call::call;
use super::layout::{self, Nav, Page};
use super::query::{parse_time, JobsQuery, JobsView};
use super::{views_jobs, views_ops, Dash};
use crate::error::ApiError;
use crate::http::{cron, jobs, ops, queues, sse};

/// A whole page.
fn render(dash: &Dash, nav: Nav, title: &str, body: Markup) -> Response {
    let page = Page {
        title,
        nav,
        signed_in: dash.app.token.is_some(),
    };
    layout::page(&page, body).into_response()
}

/// Any other `/ui/…` path.
pub(crate) async fn not_found() -> Response {
    refusal(
        StatusCode::NOT_FOUND,
        "Not found",
        "there is no such dashboard page; start from the overview",
    )
}

/// Job counts per pool and state.
async fn counts(dash: &Dash) -> Result<BTreeMap<(String, JobState), u64>, ApiError> {
    let counts = dash.app.engine.store.counts().await?;
    Ok(counts
        .into_iter()
        .map(|((pool, st), n)| ((pool, jobs::state(st)), n))
        .collect())
}

async fn workers_list(dash: &Dash) -> WorkerList {
    call(async { Ok(ops::workers(State(Arc::clone(&dash.app))).await) })
        .await
        .unwrap_or(WorkerList { workers: vec![] })
}

/// The nodes, from `GET /v1/nodes`'s handler.
async fn node_list(dash: &Dash) -> Result<offload_api::NodeList, ApiError> {
    call(crate::http::nodes::list(State(Arc::clone(&dash.app)))).await
}

/// `/`: counts, charts, workers, nodes.
pub(crate) async fn overview(State(dash): State<Arc<Dash>>) -> Response {
    let counts = match counts(&dash).await {
        Ok(c) => c,
        Err(e) => return failed(&e),
    };
    let workers = workers_list(&dash).await;
    let nodes = match node_list(&dash).await {
        Ok(n) => n,
        Err(e) => return failed(&e),
    };
    let body = views_ops::overview(&counts, &workers, &nodes, now_ms());
    render(&dash, Nav::Overview, "Overview", body)
}

/// The counts partial.
pub(crate) async fn counts_partial(State(dash): State<Arc<Dash>>) -> Response {
    match counts(&dash).await {
        Ok(c) => layout::inner(views_ops::counts(&c)).into_response(),
        Err(e) => failed(&e),
    }
}

/// The workers partial.
pub(crate) async fn workers(State(dash): State<Arc<Dash>>) -> Response {
    layout::inner(views_ops::workers(&workers_list(&dash).await, now_ms())).into_response()
}

/// The nodes partial.
pub(crate) async fn nodes(State(dash): State<Arc<Dash>>) -> Response {
    match node_list(&dash).await {
        Ok(n) => layout::inner(super::views_nodes::nodes(&n)).into_response(),
        Err(e) => failed(&e),
    }
}

/// Rows per page.
pub(crate) const PAGE: u32 = 50;

/// One page: state and name filter in the store; `until` becomes the starting cursor (ids are
/// UUIDv7, ordered by creation time); `since` ends the listing at the first older job.
async fn list_jobs(dash: &Dash, q: &JobsQuery) -> Result<JobsView, ApiError> {
    let state = match JobsQuery::field(q.state.as_ref()) {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<JobState>(serde_json::Value::String(s.to_owned()))
                .map_err(|_| ApiError::bad_request(format!("state: {s:?} is not a job state")))?,
        ),
    };
    let since = parse_time("since", JobsQuery::field(q.since.as_ref()))?;
    let until = parse_time("until", JobsQuery::field(q.until.as_ref()))?;
    let cursor = JobsQuery::field(q.cursor.as_ref())
        .map(|c| {
            c.parse::<uuid::Uuid>()
                .map_err(|_| ApiError::bad_request(format!("cursor: {c:?} is not a job id")))
        })
        .transpose()?;
    let query = ListQuery {
        state,
        job: JobsQuery::field(q.job.as_ref()).map(str::to_owned),
        schedule: JobsQuery::field(q.schedule.as_ref()).map(str::to_owned),
        since,
        until,
        limit: Some(PAGE),
        cursor,
        include: None,
    };
    let page: JobPage = call(jobs::list(State(Arc::clone(&dash.app)), Ok(Query(query)))).await?;
    let (rows, next) = (page.jobs, page.next_cursor);
    Ok(JobsView { jobs: rows, next })
}

/// `/ui/jobs`.
pub(crate) async fn jobs(
    State(dash): State<Arc<Dash>>,
    q: Result<Query<JobsQuery>, QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    if let Some(id) = JobsQuery::field(q.id.as_ref()) {
        return Redirect::to(&format!("/ui/jobs/{}", layout::encode(id))).into_response();
    }
    let listed = list_jobs(&dash, &q).await;
    // With a job name filtered, the page offers to pause or resume that name.
    let name_paused = match JobsQuery::field(q.job.as_ref()) {
        Some(job) if dash.caps.pause => paused_queues(&dash).await.ok().map(|list| {
            list.queues
                .iter()
                .any(|p| p.kind == offload_api::QueueKind::Job && p.name == job)
        }),
        _ => None,
    };
    let body = views_jobs::jobs_page(&q, &listed, dash.caps, name_paused, now_ms(), Nav::Jobs);
    let status = listed.as_ref().err().map_or(StatusCode::OK, |e| e.status);
    (status, render(&dash, Nav::Jobs, "Jobs", body)).into_response()
}

/// `/ui/dead`: the jobs that used every attempt.
pub(crate) async fn dead(
    State(dash): State<Arc<Dash>>,
    q: Result<Query<JobsQuery>, QueryRejection>,
) -> Response {
    let mut q = q.map(|Query(q)| q).unwrap_or_default();
    q.state = Some("dead".into());
    let listed = list_jobs(&dash, &q).await;
    let body = views_jobs::jobs_page(&q, &listed, dash.caps, None, now_ms(), Nav::Dead);
    render(&dash, Nav::Dead, "Dead jobs", body)
}

/// The rows partial of either list.
pub(crate) async fn job_rows(
    State(dash): State<Arc<Dash>>,
    q: Result<Query<JobsQuery>, QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let listed = list_jobs(&dash, &q).await;
    layout::inner(views_jobs::job_table(&q, &listed, now_ms())).into_response()
}

async fn get_job(dash: &Dash, id: &str) -> Result<Job, ApiError> {
    call(jobs::get(State(Arc::clone(&dash.app)), Path(id.to_owned()))).await
}

/// `/ui/jobs/{id}`.
pub(crate) async fn job(State(dash): State<Arc<Dash>>, Path(id): Path<String>) -> Response {
    match get_job(&dash, &id).await {
        Ok(job) => {
            let title = format!("Job {}", job.job);
            let body = views_jobs::job_page(&job, dash.caps, now_ms());
            render(&dash, Nav::Jobs, &title, body)
        }
        Err(e) => failed(&e),
    }
}

/// The job's panel partial (its state, progress, attempts, actions).
pub(crate) async fn job_panel(State(dash): State<Arc<Dash>>, Path(id): Path<String>) -> Response {
    match get_job(&dash, &id).await {
        Ok(job) => layout::inner(views_jobs::job_panel(&job, dash.caps, now_ms())).into_response(),
        Err(e) => failed(&e),
    }
}

async fn schedule_list(dash: &Dash) -> ScheduleList {
    call(async { Ok(cron::list(State(Arc::clone(&dash.app))).await) })
        .await
        .unwrap_or(ScheduleList { schedules: vec![] })
}

/// `/ui/schedules`.
pub(crate) async fn schedules(State(dash): State<Arc<Dash>>) -> Response {
    let list = schedule_list(&dash).await;
    let body = views_ops::schedules_page(&list, now_ms());
    render(&dash, Nav::Schedules, "Schedules", body)
}

/// The schedules table partial.
pub(crate) async fn schedule_table(State(dash): State<Arc<Dash>>) -> Response {
    layout::inner(views_ops::schedule_table(
        &schedule_list(&dash).await,
        now_ms(),
    ))
    .into_response()
}

async fn pool_data(dash: &Dash) -> Result<(PoolList, WorkerList), ApiError> {
    let pools: PoolList = call(ops::pools(State(Arc::clone(&dash.app)))).await?;
    Ok((pools, workers_list(dash).await))
}

/// `/ui/pools`.
pub(crate) async fn pools(State(dash): State<Arc<Dash>>) -> Response {
    match pool_data(&dash).await {
        Ok((pools, workers)) => {
            let queues = match paused_queues(&dash).await {
                Ok(q) => q,
                Err(e) => return failed(&e),
            };
            let cap = dash.app.engine.config().limits.max_workers_per_pool;
            let body = views_ops::pools_page(&pools, &workers, &queues, cap, dash.caps, now_ms());
            render(&dash, Nav::Pools, "Pools", body)
        }
        Err(e) => failed(&e),
    }
}

async fn paused_queues(dash: &Dash) -> Result<PausedQueueList, ApiError> {
    call(queues::list(State(Arc::clone(&dash.app)))).await
}

/// The paused job names partial.
pub(crate) async fn queue_table(State(dash): State<Arc<Dash>>) -> Response {
    match paused_queues(&dash).await {
        Ok(q) => layout::inner(views_ops::job_queue_table(&q, now_ms())).into_response(),
        Err(e) => failed(&e),
    }
}

/// The pools table partial.
pub(crate) async fn pool_table(State(dash): State<Arc<Dash>>) -> Response {
    match pool_data(&dash).await {
        Ok((pools, workers)) => {
            let cap = dash.app.engine.config().limits.max_workers_per_pool;
            layout::inner(views_ops::pool_table(
                &pools,
                &workers,
                cap,
                dash.caps,
                now_ms(),
            ))
            .into_response()
        }
        Err(e) => failed(&e),
    }
}

/// `/ui/events`: the API's event stream (its bounded pump, its subscriber cap) behind the
/// dashboard's session.
pub(crate) async fn events(State(dash): State<Arc<Dash>>) -> Response {
    match sse::events(
        State(Arc::clone(&dash.app)),
        Ok(Query(EventsQuery { id: None })),
    )
    .await
    {
        Ok(stream) => stream.into_response(),
        Err(e) if e.code == ErrorCode::TooManySubscribers => e.into_response(),
        Err(e) => failed(&e),
    }
}
