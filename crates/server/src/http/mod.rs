//! The HTTP/JSON API (`docs/http-api.md`). One module per group of routes; the routes are
//! listed once, in [`ROUTES`], which the router and the OpenAPI test both use.

mod cron;
mod engine_error;
mod guard;
mod jobs;
pub(crate) mod listen;
mod ops;
mod sse;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;

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
        }
    }
}

/// Every route: method and path, as in `openapi.json`.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/jobs"),
    ("get", "/v1/jobs"),
    ("post", "/v1/jobs/batch"),
    ("get", "/v1/jobs/{id}"),
    ("get", "/v1/jobs/{id}/result"),
    ("post", "/v1/jobs/{id}/cancel"),
    ("post", "/v1/jobs/{id}/retry"),
    ("get", "/v1/events"),
    ("get", "/v1/workers"),
    ("get", "/v1/pools"),
    ("post", "/v1/pools/{name}/resize"),
    ("get", "/v1/cron"),
    ("post", "/v1/cron"),
    ("delete", "/v1/cron/{name}"),
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/v1/openapi.json"),
];

/// The OpenAPI document.
pub const OPENAPI: &str = include_str!("../../openapi.json");

pub(crate) fn router(app: Arc<App>) -> Router {
    let max_body = app.max_body;
    Router::new()
        .route("/v1/jobs", post(jobs::submit).get(jobs::list))
        .route("/v1/jobs/batch", post(jobs::batch))
        .route("/v1/jobs/{id}", get(jobs::get))
        .route("/v1/jobs/{id}/result", get(jobs::result))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel))
        .route("/v1/jobs/{id}/retry", post(jobs::retry))
        .route("/v1/events", get(sse::events))
        .route("/v1/workers", get(ops::workers))
        .route("/v1/pools", get(ops::pools))
        .route("/v1/pools/{name}/resize", post(ops::resize))
        .route("/v1/cron", get(cron::list).post(cron::add))
        .route("/v1/cron/{name}", delete(cron::remove))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/openapi.json", get(ops::openapi))
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
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
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
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is over the size limit (http.max_body_bytes)",
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.body_text())
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not a valid request: {e}"),
        )
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
        Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.clone(), path.clone()))
            })
            .collect();
        documented.sort();
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
    }
}
