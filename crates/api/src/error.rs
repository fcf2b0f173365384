//! The error envelope every refusal of the API carries: a status and
//! `{"error": {"code": "...", "message": "..."}}`, with the stable [`ErrorCode`]s.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A stable error code (`docs/http-api.md`, "Errors"). Clients match on it; the message is for
/// people. Each code comes with one status (`ErrorCode::status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the body is not JSON or does not match the request's shape.
    InvalidJson,
    /// 400: a field, a query parameter or a path segment has a bad value.
    InvalidRequest,
    /// 400: a cron expression does not parse, or fires too often.
    InvalidCron,
    /// 401: the bearer token is missing or wrong.
    Unauthorized,
    /// 403: a request from another site, or a state-changing one with a foreign `Origin`.
    Forbidden,
    /// 404: no job file by that name in the jobs folder.
    UnknownJob,
    /// 404: no such job, pool, schedule or route.
    NotFound,
    /// 405: a route that exists, with another method.
    MethodNotAllowed,
    /// 408: the request body did not arrive in time.
    RequestTimeout,
    /// 409: the request does not fit the resource's state.
    Conflict,
    /// 413: a body or a `params` over its limit.
    PayloadTooLarge,
    /// 415: a request body that is not `application/json`.
    UnsupportedMediaType,
    /// 421: a `Host` that does not name the daemon.
    MisdirectedRequest,
    /// 429: admission control refused a submit.
    QueueFull,
    /// 503: the daemon is shutting down.
    Unavailable,
    /// 503: every connection slot is taken.
    TooManyConnections,
    /// 503: every event-stream slot is taken.
    TooManySubscribers,
    /// 503: every long-poll slot is taken.
    TooManyLongPolls,
    /// 500: a bug or a storage failure (logged by the daemon).
    Internal,
}

impl ErrorCode {
    /// Every code, in the order of the documentation.
    pub const ALL: [ErrorCode; 19] = [
        Self::InvalidJson,
        Self::InvalidRequest,
        Self::InvalidCron,
        Self::Unauthorized,
        Self::Forbidden,
        Self::UnknownJob,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::RequestTimeout,
        Self::Conflict,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::MisdirectedRequest,
        Self::QueueFull,
        Self::Unavailable,
        Self::TooManyConnections,
        Self::TooManySubscribers,
        Self::TooManyLongPolls,
        Self::Internal,
    ];

    /// Its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidCron => "invalid_cron",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::UnknownJob => "unknown_job",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::MisdirectedRequest => "misdirected_request",
            Self::QueueFull => "queue_full",
            Self::Unavailable => "unavailable",
            Self::TooManyConnections => "too_many_connections",
            Self::TooManySubscribers => "too_many_subscribers",
            Self::TooManyLongPolls => "too_many_long_polls",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status this code is answered with.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidJson | Self::InvalidRequest | Self::InvalidCron => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::UnknownJob | Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::RequestTimeout => 408,
            Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::MisdirectedRequest => 421,
            Self::QueueFull => 429,
            Self::Unavailable
            | Self::TooManyConnections
            | Self::TooManySubscribers
            | Self::TooManyLongPolls => 503,
            Self::Internal => 500,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ErrorCode {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCode(s.to_owned()))
    }
}

/// A code this version of the contract does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCode(pub String);

impl fmt::Display for UnknownCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown error code {:?}", self.0)
    }
}

impl std::error::Error for UnknownCode {}

impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable: clients match on it.
    pub code: ErrorCode,
    /// What happened and what to do, for people.
    pub message: String,
}

impl ErrorBody {
    /// An envelope for `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_their_wire_names() {
        for c in ErrorCode::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(c.as_str().parse::<ErrorCode>(), Ok(c));
            assert!((400..600).contains(&c.status()), "{c}");
        }
        assert!("nope".parse::<ErrorCode>().is_err());
        let body = ErrorBody::new(ErrorCode::QueueFull, "full");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"code":"queue_full","message":"full"}}"#
        );
    }
}
