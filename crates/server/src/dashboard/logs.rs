//! Each attempt's logs on a job's page: the region `/ui/jobs/{id}/attempts/{n}/logs` (a
//! partial for htmx, a whole page when opened directly), read through the API's
//! `GET /v1/jobs/{id}/logs` (`http/logs.rs`).
//!
//! The region replaces itself (`outerHTML`): while its attempt may still print (the job is
//! active and this is its current attempt) the new region asks again every 2 s; once the
//! attempt is over it stops. Lines are escaped by maud, shown monospace, stderr marked, the
//! cut marker (the daemon's last line when the attempt went over
//! `max_log_bytes_per_attempt`) highlighted, lines a pool worker printed while running
//! several jobs marked shared.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use offload_api::{JobLogs, LogStream, LogsQuery, MAX_LOG_PAGE};

use super::auth::failed;
use super::layout::{self, Nav, Page};
use super::Dash;
use crate::error::ApiError;

/// The region's id for attempt `n`.
fn region_id(n: u32) -> String {
    format!("log-{n}")
}

/// The region's URL.
fn url(id: &str, n: u32) -> String {
    format!("/ui/jobs/{}/attempts/{n}/logs", layout::encode(id))
}

/// The place of attempt `n`'s log on the job's page: loads itself when shown (`eager`: at
/// once; else when its `details` opens).
pub(crate) fn placeholder(id: &str, n: u32, eager: bool) -> Markup {
    let trigger = if eager {
        "load"
    } else {
        "toggle once from:closest details"
    };
    html! {
        div.log-region id=(region_id(n)) hx-get=(url(id, n)) hx-trigger=(trigger) hx-swap="outerHTML" {
            p.hint { "Loading the output…" }
        }
    }
}

/// The region with attempt `n`'s lines.
fn region(id: &str, n: u32, logs: &JobLogs) -> Markup {
    let live = logs.active && n == logs.attempts;
    let lines = &logs.lines;
    html! {
        div.log-region id=(region_id(n)) hx-get=(url(id, n)) hx-swap="outerHTML"
            hx-trigger=[live.then_some("every 2s")] {
            @if lines.is_empty() {
                p.hint {
                    @if live { "No output yet." }
                    @else if n < logs.attempts {
                        "No lines kept: this attempt printed nothing, or a later retry deleted them (a retry keeps the logs of the job's last attempts only: "
                        code { "[limits] max_log_attempts_per_job" } ")."
                    }
                    @else { "This attempt printed nothing." }
                }
            } @else {
                pre.log role="region" tabindex="0" aria-label={ "Output of attempt " (n) } {
                    @for l in lines {
                        @let class = match (l.cut, l.stream) {
                            (true, _) => "cut",
                            (false, LogStream::Stderr) => "stderr",
                            (false, LogStream::Stdout) => "stdout",
                        };
                        span class=(class) title=[l.shared.then_some("printed while its worker ran several jobs: stored with each")] {
                            @if l.shared { "[shared] " }
                            (l.line) "\n"
                        }
                    }
                }
                @if logs.next_cursor.is_some() {
                    p.hint { "The first " (lines.len()) " lines; the rest: " code { "offload logs " (id) " --attempt " (n) } }
                }
            }
            p.log-legend {
                small.hint { "stderr in colour" @if live { " · updates every 2 s while it runs" } }
                " "
                button.link type="button" hx-get=(url(id, n)) hx-target={ "#" (region_id(n)) } hx-swap="outerHTML" { "Refresh" }
            }
        }
    }
}

async fn read(dash: &Dash, id: &str, n: u32) -> Result<JobLogs, ApiError> {
    let q = LogsQuery {
        attempt: Some(n),
        cursor: None,
        limit: Some(MAX_LOG_PAGE),
    };
    crate::http::logs::read(&dash.app, id, q).await
}

/// `/ui/jobs/{id}/attempts/{n}/logs`: the region for htmx, or a page around it.
pub(crate) async fn attempt_logs(
    State(dash): State<Arc<Dash>>,
    Path((id, n)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Ok(n) = n.parse::<u32>() else {
        return failed(&ApiError::not_found(format!("no attempt {n:?}")));
    };
    let logs = match read(&dash, &id, n).await {
        Ok(l) => l,
        Err(e) => return failed(&e),
    };
    let region = region(&id, n, &logs);
    if headers.get("hx-request").is_some_and(|v| v == "true") {
        return region.into_response();
    }
    let title = format!("Attempt {n} of job {id}");
    let body = html! {
        p.crumbs { a href="/ui/jobs" { "Jobs" } " / " a href={ "/ui/jobs/" (layout::encode(&id)) } { code { (id) } } " / attempt " (n) }
        h1 { "Output of attempt " (n) }
        (region)
    };
    let page = Page {
        title: &title,
        nav: Nav::Jobs,
        signed_in: dash.app.token.is_some(),
    };
    layout::page(&page, body).into_response()
}
