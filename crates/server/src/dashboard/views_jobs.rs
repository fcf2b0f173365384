//! The markup of the jobs list, the dead jobs and one job. Every action names its job in its
//! URL, so a stale page can only act on the job it shows.

use maud::{html, Markup};
use offload_api::{Job, JobState};

use super::layout::{self, badge, empty, first_job_hint, progress_bar, when, Nav};
use super::query::{JobsQuery, JobsView};
use super::Caps;
use crate::error::ApiError;

const STATES: [&str; 8] = [
    "scheduled",
    "waiting",
    "queued",
    "running",
    "failed",
    "succeeded",
    "dead",
    "cancelled",
];

/// Whether a job can still be cancelled.
fn cancellable(s: JobState) -> bool {
    matches!(
        s,
        JobState::Scheduled
            | JobState::Queued
            | JobState::Running
            | JobState::Failed
            | JobState::Waiting
    )
}

/// Whether a job can be retried.
fn retryable(s: JobState) -> bool {
    matches!(s, JobState::Dead | JobState::Cancelled)
}

fn action(id: &str, verb: &str, label: &str, what: &str) -> Markup {
    html! {
        button type="button" class={ "act act-" (verb) }
            hx-post={ "/ui/jobs/" (id) "/" (verb) } hx-target="#flash"
            aria-label={ (label) " " (what) } { (label) }
    }
}

/// The buttons a job in its state offers.
fn actions(job: &Job, caps: Caps) -> Markup {
    let id = job.id.to_string();
    let what = format!("job {} ({})", job.job, short(&id));
    html! {
        span.actions {
            @if cancellable(job.state) { (action(&id, "cancel", "Cancel", &what)) }
            @if retryable(job.state) { (action(&id, "retry", "Retry", &what)) }
            @if caps.delete && job.state.is_terminal() { (action(&id, "delete", "Delete", &what)) }
        }
    }
}

fn short(id: &str) -> &str {
    id.get(id.len().saturating_sub(8)..).unwrap_or(id)
}

/// The filter form, the table and the pager; with a job name filtered and `name_paused` known,
/// the button that pauses or resumes that name.
pub(crate) fn jobs_page(
    q: &JobsQuery,
    listed: &Result<JobsView, ApiError>,
    caps: Caps,
    name_paused: Option<bool>,
    now: i64,
    nav: Nav,
) -> Markup {
    let dead = nav == Nav::Dead;
    let sel = q.state.as_deref().unwrap_or("");
    let val = |v: &Option<String>| v.clone().unwrap_or_default();
    html! {
        h1 { @if dead { "Dead jobs" } @else { "Jobs" } }
        @if dead {
            p.lead { "Jobs that used every attempt. Retry one to queue it again with a fresh round of attempts; its earlier attempts and their logs stay." }
            @if caps.bulk {
                p.actions {
                    button type="button" hx-post={ "/ui/dead/retry?" (q.to_query(None)) } hx-target="#flash" hx-confirm="Retry every dead job that matches?" { "Retry all matching" }
                    " "
                    button type="button" hx-post={ "/ui/dead/delete?" (q.to_query(None)) } hx-target="#flash" hx-confirm="Delete every dead job that matches? This cannot be undone." { "Delete all matching" }
                }
            }
        }
        form.filters method="get" action=(if dead { "/ui/dead" } else { "/ui/jobs" }) role="search" {
            @if !dead {
                label { "State "
                    select name="state" {
                        option value="" selected[sel.is_empty()] { "any" }
                        @for s in STATES { option value=(s) selected[sel == s] { (s) } }
                    }
                }
            }
            label { "Job name " input type="text" name="job" value=(val(&q.job)) placeholder="e.g. hello" maxlength="256"; }
            label { "Schedule " input type="text" name="schedule" value=(val(&q.schedule)) placeholder="any" maxlength="128" size="12"; }
            label { "Created after (UTC) " input type="datetime-local" name="since" value=(val(&q.since)); }
            label { "Created before (UTC) " input type="datetime-local" name="until" value=(val(&q.until)); }
            button type="submit" { "Filter" }
        }
        @if let (Some(paused), Some(job)) = (name_paused, JobsQuery::field(q.job.as_ref())) {
            p.actions {
                @if paused {
                    "Job name " code { (job) } " is paused: its jobs stay queued. "
                    button type="button" hx-post={ "/ui/queues/" (super::layout::encode(job)) "/resume" } hx-target="#flash" { "Resume " (job) }
                } @else {
                    button type="button" hx-post="/ui/queues/pause" hx-vals=(serde_json::json!({"job": job}).to_string()) hx-target="#flash"
                        hx-confirm={ "Pause every job named " (job) "? They stay queued until resumed." } { "Pause " (job) }
                }
            }
        }
        @if !dead {
            form.filters method="get" action="/ui/jobs" role="search" {
                label { "Job id " input type="search" name="id" placeholder="0193…" maxlength="64" size="38"; }
                button type="submit" { "Open" }
            }
        }
        (job_table(q, listed, now))
    }
}

/// The table, refreshed live (`job` events) and after an action; at most one page of rows.
pub(crate) fn job_table(q: &JobsQuery, listed: &Result<JobsView, ApiError>, now: i64) -> Markup {
    let query = q.to_query(q.cursor.as_deref());
    html! {
        div #job-table hx-get={ "/ui/jobs/rows?" (query) } hx-trigger="dash-live, dash-refresh from:body"
            hx-swap="innerHTML" hx-sync="this:queue last" data-live="job" {
            @match listed {
                Err(e) => { p.notice.error role="alert" { (e.message) } }
                Ok(v) if v.jobs.is_empty() => {
                    @if q.to_query(None).is_empty() {
                        (empty("No jobs yet.", first_job_hint()))
                    } @else {
                        (empty("No job matches these filters.", html! { p { a href="/ui/jobs" { "Clear the filters" } } }))
                    }
                }
                Ok(v) => {
                    div.scroll {
                        table.jobs {
                            caption.sr-only { "Jobs, newest first" }
                            thead { tr {
                                th scope="col" { "Job" } th scope="col" { "State" } th scope="col" { "Progress" }
                                th scope="col" { "Pool" } th scope="col" { "Attempt" } th scope="col" { "Created" }
                                th scope="col" { "Updated" } th scope="col" { span.sr-only { "Actions" } }
                            } }
                            tbody {
                                @for j in &v.jobs { (row(j, now)) }
                            }
                        }
                    }
                    nav.pager aria-label="Pages" {
                        @if q.cursor.is_some() { a href={ "?" (q.to_query(None)) } { "← Newest" } }
                        @if let Some(next) = &v.next { a href={ "?" (q.to_query(Some(next))) } rel="next" { "Older →" } }
                    }
                }
            }
        }
    }
}

fn row(j: &Job, now: i64) -> Markup {
    let id = j.id.to_string();
    html! {
        tr data-job=(id) {
            td { a href={ "/ui/jobs/" (id) } { (j.job) } br; code.id title=(id) { "…" (short(&id)) } }
            td { (badge(j.state)) }
            td { (progress_bar(&id, j.progress.as_ref(), j.state == JobState::Running)) }
            td { (j.pool) }
            td.num { (j.attempt) " / " (j.max_attempts) }
            td { (when(j.created_at, now)) }
            td { (when(j.updated_at, now)) }
            td { (actions(j, Caps::default())) }
        }
    }
}

/// One job's page: the live panel, then what does not change (params).
pub(crate) fn job_page(job: &Job, caps: Caps, now: i64) -> Markup {
    html! {
        p.crumbs { a href="/ui/jobs" { "Jobs" } " / " code { (job.id) } }
        h1 { (job.job) " " (badge(job.state)) }
        (job_panel(job, caps, now))
        section aria-labelledby="params-h" {
            h2 #params-h { "Params" }
            @match &job.params {
                Some(p) => (layout::json_block(p)),
                None => p { "none" },
            }
        }
    }
}

/// The live part of a job's page: refreshed on its own `job` events and after an action.
pub(crate) fn job_panel(job: &Job, caps: Caps, now: i64) -> Markup {
    let id = job.id.to_string();
    html! {
        div #job-panel hx-get={ "/ui/jobs/" (id) "/panel" } hx-trigger="dash-live, dash-refresh from:body"
            hx-swap="innerHTML" hx-sync="this:queue last" data-live="job" data-job-filter=(id) {
            dl.facts {
                dt { "State" } dd { (badge(job.state)) @if job.cancel_requested { " (cancel requested)" } }
                dt { "Progress" } dd { (progress_bar(&id, job.progress.as_ref(), job.state == JobState::Running)) @if job.progress.is_none() && job.state != JobState::Running { "—" } }
                dt { "Pool" } dd { (job.pool) }
                dt { "Attempt" } dd { (job.attempt) " of " (job.max_attempts) }
                dt { "Priority" } dd { (job.priority) }
                dt { "Created" } dd { (when(job.created_at, now)) }
                dt { "Runs at" } dd { (when(job.run_at, now)) }
                dt { "Updated" } dd { (when(job.updated_at, now)) }
                dt { "Timeout" } dd { (job.timeout_ms.map_or_else(|| "none".to_owned(), layout::duration)) }
                dt { "Backoff" } dd { (layout::duration(job.backoff_ms)) }
                @if !job.after.is_empty() {
                    dt { "Runs after" }
                    dd {
                        @for (i, dep) in job.after.iter().enumerate() {
                            @if i > 0 { ", " }
                            a href={ "/ui/jobs/" (dep) } { code { (dep) } }
                        }
                        " (" (job.waiting_on) " not over; "
                        @if job.after_policy == Some(offload_api::AfterPolicy::Always) { "runs whatever their ends" } @else { "runs if they all succeed" }
                        ")"
                    }
                }
                @if let Some(node) = &job.node { dt { "Node" } dd { (node) } }
                @if let Some(k) = &job.idempotency_key { dt { "Idempotency key" } dd { code { (k) } } }
            }
            p { (actions(job, caps)) }
            @if job.state == JobState::Succeeded {
                section aria-labelledby="result-h" {
                    h2 #result-h { "Result" }
                    (layout::json_block(job.result.as_ref().unwrap_or(&serde_json::Value::Null)))
                }
            }
            @if let Some(e) = &job.error {
                section aria-labelledby="error-h" {
                    h2 #error-h { "Error" }
                    p.error-line { strong { (e.name) } ": " (e.message) }
                    @if let Some(stack) = &e.stack { pre.stack { (stack) } }
                }
            }
            section aria-labelledby="attempts-h" {
                h2 #attempts-h { "Attempts" }
                @if job.attempts.is_empty() {
                    p { "No attempt yet: the job waits for a free worker of pool " (job.pool) "." }
                } @else {
                    div.scroll { table {
                        thead { tr {
                            th scope="col" { "#" } th scope="col" { "Node" } th scope="col" { "PID" }
                            th scope="col" { "Started" } th scope="col" { "Duration" } th scope="col" { "Outcome" }
                            @if caps.logs { th scope="col" { "Logs" } }
                        } }
                        tbody { @for a in &job.attempts { tr {
                            td.num { (a.attempt) }
                            td { (a.node.as_deref().unwrap_or("—")) }
                            td.num { (a.pid.map_or_else(|| "—".to_owned(), |p| p.to_string())) }
                            td { (when(a.started_at, now)) }
                            td.num { (match a.ended_at {
                                Some(end) => layout::duration(end.saturating_sub(a.started_at).unsigned_abs()),
                                None => format!("{} so far", layout::duration(now.saturating_sub(a.started_at).unsigned_abs())),
                            }) }
                            td {
                                (a.outcome.as_deref().unwrap_or("running"))
                                @if let Some(e) = &a.error { br; small { (e.name) ": " (e.message) } }
                            }
                            @if caps.logs { td { a href={ "/ui/jobs/" (id) "/attempts/" (a.attempt) "/logs" } { "stdout / stderr" } } }
                        } } }
                    } }
                }
            }
            @if caps.logs && !job.attempts.is_empty() {
                section aria-labelledby="logs-h" {
                    h2 #logs-h { "Logs" }
                    @for a in job.attempts.iter().rev() {
                        @let last = a.attempt == job.attempt;
                        details.log open[last] {
                            summary { "Attempt " (a.attempt) " · " (a.outcome.as_deref().unwrap_or("running")) }
                            (super::logs::placeholder(&id, a.attempt, last))
                        }
                    }
                }
            }
        }
    }
}
