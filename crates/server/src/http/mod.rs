//! The HTTP/JSON API (`docs/http-api.md`). One module per group of routes; the routes are
//! listed once, in [`api`]: each handler's `#[utoipa::path]` gives its method, path and every
//! answer, from which both the router and the OpenAPI document (`openapi`) are made. The
//! bodies are `offload_api`'s types.

pub(crate) mod bulk;
pub(crate) mod control;
pub(crate) mod cron;
mod engine_error;
pub(crate) mod guard;
pub(crate) mod jobs;
pub(crate) mod limits;
pub(crate) mod listen;
pub(crate) mod logs;
pub(crate) mod nodes;
pub(crate) mod openapi;
pub(crate) mod ops;
pub(crate) mod queues;
pub(crate) mod sse;
pub(crate) mod stats;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use offload_api::ErrorCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use tokio::sync::Semaphore;

use crate::config::HttpLimits;
use crate::cron::Scheduler;
use crate::engine::Engine;
use crate::error::ApiError;

/// Shared by every handler.
pub(crate) struct App {
    pub(crate) engine: Arc<Engine>,
    pub(crate) cron: Arc<Scheduler>,
    pub(crate) token: Option<String>,
    /// `[http]`.
    pub(crate) limits: HttpLimits,
    /// Largest request body.
    pub(crate) max_body: usize,
    /// Event-stream subscribers (`http.max_sse_subscribers`).
    pub(crate) sse_slots: Arc<Semaphore>,
    /// Long polls (`http.max_long_polls`).
    pub(crate) long_polls: Arc<Semaphore>,
    /// The OpenAPI document of the routes (set once the router is built), completed for
    /// this daemon and day when served.
    pub(crate) openapi: std::sync::OnceLock<utoipa::openapi::OpenApi>,
}

impl App {
    pub(crate) fn new(
        engine: Arc<Engine>,
        cron: Arc<Scheduler>,
        token: Option<String>,
        limits: HttpLimits,
        max_body: usize,
    ) -> Self {
        Self {
            engine,
            cron,
            token,
            sse_slots: Arc::new(Semaphore::new(limits.max_sse_subscribers)),
            long_polls: Arc::new(Semaphore::new(limits.max_long_polls)),
            limits,
            max_body,
            openapi: std::sync::OnceLock::new(),
        }
    }

    /// The document as served now.
    pub(crate) fn openapi_json(&self) -> String {
        let doc = self.openapi.get().cloned().unwrap_or_default();
        openapi::finish(doc, &self.settings())
    }

    /// What the served document states of this daemon's configuration (and day).
    fn settings(&self) -> openapi::Settings {
        let cfg = self.engine.config();
        openapi::Settings {
            token: self.token.is_some(),
            max_timeout_ms: cfg.max_timeout_ms,
            max_workers_per_pool: cfg.limits.max_workers_per_pool,
            latest_run_at: offload_api::limits::latest_run_at(offload_store::now_ms()),
        }
    }
}

/// The API's routes, each documented by its handler's `#[utoipa::path]`: the router and the
/// OpenAPI document come from this one list.
pub(crate) fn api() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(jobs::submit, jobs::list))
        .routes(routes!(jobs::batch))
        .routes(routes!(jobs::get, bulk::delete))
        .routes(routes!(bulk::retry_many))
        .routes(routes!(bulk::delete_many))
        .routes(routes!(jobs::result))
        .routes(routes!(jobs::cancel))
        .routes(routes!(jobs::retry))
        .routes(routes!(logs::logs))
        .routes(routes!(sse::events))
        .routes(routes!(ops::workers))
        .routes(routes!(ops::pools))
        .routes(routes!(ops::resize))
        .routes(routes!(ops::recycle))
        .routes(routes!(control::kill_worker))
        .routes(routes!(control::broadcast))
        .routes(routes!(queues::pause_pool))
        .routes(routes!(queues::resume_pool))
        .routes(routes!(queues::pause_job))
        .routes(routes!(queues::resume_job))
        .routes(routes!(queues::list))
        .routes(routes!(nodes::list))
        .routes(routes!(nodes::drain))
        .routes(routes!(nodes::undrain))
        .routes(routes!(limits::list))
        .routes(routes!(stats::stats))
        .routes(routes!(cron::list, cron::add))
        .routes(routes!(cron::remove))
        .routes(routes!(cron::pause))
        .routes(routes!(cron::resume))
        .routes(routes!(cron::run))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi))
}

pub(crate) fn router(app: Arc<App>) -> Router {
    let max_body = app.max_body;
    let (routes, doc) = api().split_for_parts();
    let _ = app.openapi.set(doc);
    routes
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), auth))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(guard::json_errors))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&app),
            guard::guard,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(app)
}

/// A handler that panicked answers `500 internal` (and is logged) instead of dropping the
/// connection; the daemon keeps serving.
fn panicked(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    use axum::response::IntoResponse;
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    tracing::error!(panic = what, "an HTTP handler panicked");
    ApiError::internal("the request hit a bug (logged); the daemon keeps serving").into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see GET /v1/openapi.json")
}

async fn auth(State(app): State<Arc<App>>, req: Request, next: Next) -> Result<Response, ApiError> {
    if let Some(token) = &app.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let open = req.uri().path() == "/healthz";
        if !open && !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            return Err(ApiError::of(
                ErrorCode::Unauthorized,
                "a bearer token is required: Authorization: Bearer <token>",
            ));
        }
    }
    Ok(next.run(req).await)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses a JSON body, mapping every failure to the documented error.
pub(crate) fn parse_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::of(
                ErrorCode::PayloadTooLarge,
                "the request body is over the size limit (http.max_body_bytes)",
            )
        } else {
            ApiError::of(ErrorCode::InvalidJson, e.body_text())
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::of(
            ErrorCode::InvalidJson,
            format!("the body is not a valid request: {e}"),
        )
    })
}

/// A query string parsed into `T`, or `400 invalid_request` saying what is wrong with it.
pub(crate) fn parse_query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q).map_err(|e| {
        ApiError::bad_request(format!("the query string is not valid: {}", e.body_text()))
    })
}

/// Refuses a JSON value whose serialized form is over `limit` bytes (413 naming `field` and
/// `key`, the setting that holds the limit). Counting stops at the limit.
pub(crate) fn check_size(
    field: &str,
    value: &serde_json::Value,
    limit: usize,
    key: &str,
) -> Result<(), ApiError> {
    if crate::events::json_size_over(value, limit) {
        Err(ApiError::of(
            ErrorCode::PayloadTooLarge,
            format!("{field} is over {limit} bytes of JSON ({key})"),
        ))
    } else {
        Ok(())
    }
}

/// A JSON response with a status.
pub(crate) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    use axum::response::IntoResponse;
    (status, axum::Json(body)).into_response()
}

/// The OpenAPI document a daemon with configuration `cfg` serves at `GET /v1/openapi.json`.
pub fn openapi_json(cfg: &crate::config::ServeConfig) -> String {
    let (_, doc) = api().split_for_parts();
    openapi::finish(
        doc,
        &openapi::Settings {
            token: cfg.token.is_some(),
            max_timeout_ms: cfg.max_timeout_ms,
            max_workers_per_pool: cfg.limits.max_workers_per_pool,
            latest_run_at: offload_api::limits::latest_run_at(offload_store::now_ms()),
        },
    )
}
