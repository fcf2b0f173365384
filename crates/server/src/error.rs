//! Errors of the daemon: configuration, start-up, and the API's JSON errors.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use offload_api::{ErrorBody, ErrorCode};
use thiserror::Error;

/// A bad configuration.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file is not valid TOML for offload.
    #[error("{path} is not a valid offload.toml: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A value is not acceptable.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// The line protocol (which has no credential) would be reachable without the opt-in.
    #[error(
        "the line protocol {reason}; it has no credential: opt in explicitly with \
         `--lines-allow <networks>` (or `[lines] allow = [\"10.0.0.0/8\"]` in offload.toml), \
         naming the networks that may use it"
    )]
    LinesNeedAllow {
        /// What is exposed.
        reason: String,
    },
    /// A value is over a limit of `[limits]`.
    #[error("invalid configuration: {what}, over {limit} = {value} ([limits] in offload.toml)")]
    OverLimit {
        /// What is over.
        what: String,
        /// The limit's name.
        limit: &'static str,
        /// The limit's value.
        value: String,
    },
}

/// Why the daemon could not start or stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store failed.
    #[error("storage: {0}")]
    Store(#[from] offload_store::StoreError),
    /// A pool could not start.
    #[error("pool {pool}: {reason}")]
    Pool {
        /// The pool.
        pool: String,
        /// Why.
        reason: String,
    },
    /// The listener could not bind.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// An API error: a status and `{error: {code, message}}` ([`offload_api::ErrorBody`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code (see docs/http-api.md).
    pub code: ErrorCode,
    /// What happened and what to do.
    pub message: String,
}

impl ApiError {
    /// Any error.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// An error with its code's own status ([`ErrorCode::status`]).
    pub fn of(code: ErrorCode, message: impl Into<String>) -> Self {
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::new(status, code, message)
    }

    /// 400 `invalid_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::of(ErrorCode::InvalidRequest, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::of(ErrorCode::NotFound, message)
    }

    /// 429 `queue_full`: admission control refused a submit; `message` names the limit.
    pub fn queue_full(message: impl Into<String>) -> Self {
        Self::of(ErrorCode::QueueFull, message)
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::of(ErrorCode::Internal, message)
    }
}

impl From<offload_store::StoreError> for ApiError {
    fn from(e: offload_store::StoreError) -> Self {
        use offload_store::StoreError as E;
        match e {
            E::NotFound => Self::not_found("no such job"),
            E::Conflict(m) => Self::of(ErrorCode::Conflict, m),
            E::Invalid(m) => Self::bad_request(m),
            e @ E::Limit(_) => Self::bad_request(e.to_string()),
            e @ E::IdempotencyConflict { .. } => Self::of(ErrorCode::Conflict, e.to_string()),
            other => {
                tracing::error!(error = %other, "storage failure");
                Self::internal(other.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody::new(self.code, self.message);
        (self.status, axum::Json(body)).into_response()
    }
}
