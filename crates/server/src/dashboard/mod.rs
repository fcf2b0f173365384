//! The web dashboard of `offload serve` (`docs/dashboard.md`), on the daemon's own HTTP
//! listener: `/` (the overview) and `/ui/…`. Server-rendered HTML (maud, checked at compile
//! time), htmx for actions and partial refreshes, the engine's event stream for live parts and
//! uPlot for the charts; every asset is compiled into the binary (`assets.rs`).
//!
//! The dashboard sits above the JSON API: it calls the API's own handlers (`call.rs`) and
//! renders the `offload_api` types they answer with, so the page and the API cannot disagree
//! (one contract, one set of refusals). Its routes are not part of the OpenAPI document.
//!
//! | file | role |
//! |---|---|
//! | `mod.rs` | the routes and the dashboard's state ([`Dash`], [`Caps`]) |
//! | `auth.rs` | the guard (host, site, origin, `HX-Request`), the token login and its sessions, the security headers |
//! | `call.rs` | calling the JSON handlers and decoding their answers |
//! | `pages.rs` | the `GET` pages and their partials |
//! | `actions.rs` | the `POST` actions (each carries its job, pool or schedule in the URL) |
//! | `layout.rs` | the page frame and the formatting of times, durations, bytes and states |
//! | `views_jobs.rs`, `views_ops.rs` | the markup of the job pages and of the overview, pools and schedules |
//! | `logs.rs` | each attempt's logs on a job's page (a region that refreshes itself while the attempt runs) |
//! | `stats.rs` | the chart series ([`stats::series`]) |
//! | `assets.rs` | the embedded CSS, JavaScript and vendored htmx and uPlot |

mod actions;
mod assets;
mod auth;
mod call;
mod layout;
mod logs;
mod pages;
mod query;
pub(crate) mod stats;
mod views_jobs;
mod views_nodes;
mod views_ops;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;

use crate::http::App;

/// What the engine can do beyond what every daemon has: the dashboard shows a control only
/// when its operation exists (pause/resume per pool, per-attempt logs, deleting a job, bulk
/// retry/delete by filter: all wired now); wiring a new one is setting its flag in
/// [`Caps::of`] and filling the matching stub in `actions.rs` / `views_jobs.rs` (see
/// `docs/dashboard.md`, "What is wired").
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Caps {
    /// Pause and resume a pool or a job name.
    pub(crate) pause: bool,
    /// Each attempt's stdout and stderr.
    pub(crate) logs: bool,
    /// Delete one job, and delete all matching.
    pub(crate) delete: bool,
    /// Retry all matching.
    pub(crate) bulk: bool,
}

impl Caps {
    /// What this daemon's engine offers.
    fn of(_app: &App) -> Self {
        Self {
            pause: true,
            logs: true,
            delete: true,
            bulk: true,
        }
    }
}

/// The dashboard's state: the API's and the login sessions.
pub(crate) struct Dash {
    pub(crate) app: Arc<App>,
    pub(crate) sessions: auth::Sessions,
    pub(crate) caps: Caps,
}

/// The dashboard's routes, with its own guard, login and headers (the API's bearer check and
/// JSON-only guard do not apply to them: a browser sends a cookie and forms).
pub(crate) fn router(app: Arc<App>) -> Router {
    let dash = Arc::new(Dash {
        caps: Caps::of(&app),
        app,
        sessions: auth::Sessions::default(),
    });
    Router::new()
        .route("/", get(pages::overview))
        .route("/ui", get(pages::overview))
        .route("/ui/", get(pages::overview))
        .route("/ui/overview/counts", get(pages::counts_partial))
        .route("/ui/overview/workers", get(pages::workers))
        .route("/ui/overview/nodes", get(pages::nodes))
        .route("/ui/stats.json", get(stats::handler))
        .route("/ui/jobs", get(pages::jobs))
        .route("/ui/jobs/rows", get(pages::job_rows))
        .route("/ui/jobs/{id}", get(pages::job))
        .route("/ui/jobs/{id}/panel", get(pages::job_panel))
        .route("/ui/jobs/{id}/attempts/{n}/logs", get(logs::attempt_logs))
        .route("/ui/jobs/{id}/cancel", post(actions::cancel))
        .route("/ui/jobs/{id}/retry", post(actions::retry))
        .route("/ui/jobs/{id}/delete", post(actions::delete))
        .route("/ui/dead/retry", post(actions::retry_matching))
        .route("/ui/dead/delete", post(actions::delete_matching))
        .route("/ui/dead", get(pages::dead))
        .route("/ui/schedules", get(pages::schedules))
        .route("/ui/schedules/table", get(pages::schedule_table))
        .route("/ui/schedules/{name}/pause", post(actions::pause_schedule))
        .route(
            "/ui/schedules/{name}/resume",
            post(actions::resume_schedule),
        )
        .route("/ui/schedules/{name}/run", post(actions::run_schedule))
        .route("/ui/pools", get(pages::pools))
        .route("/ui/pools/table", get(pages::pool_table))
        .route("/ui/pools/{name}/resize", post(actions::resize))
        .route("/ui/pools/{name}/pause", post(actions::pause_pool))
        .route("/ui/pools/{name}/resume", post(actions::resume_pool))
        .route("/ui/pools/{name}/recycle", post(actions::recycle_pool))
        .route("/ui/queues/table", get(pages::queue_table))
        .route("/ui/queues/pause", post(actions::pause_job_queue))
        .route("/ui/queues/{job}/resume", post(actions::resume_job_queue))
        .route("/ui/events", get(pages::events))
        .route("/ui/login", get(auth::login_page).post(auth::login))
        .route("/ui/logout", post(auth::logout))
        .route("/ui/assets/{file}", get(assets::serve))
        .route("/ui/{*rest}", get(pages::not_found).post(pages::not_found))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&dash),
            auth::require_session,
        ))
        .layer(DefaultBodyLimit::max(auth::MAX_FORM_BYTES))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&dash),
            auth::guard,
        ))
        .layer(middleware::from_fn(auth::headers))
        .with_state(dash)
}
