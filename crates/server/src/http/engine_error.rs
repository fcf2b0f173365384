//! The one mapping of the engine's errors ([`EngineError`]) to the API's JSON errors: each
//! kind of refusal gets its documented status and code (`docs/http-api.md`); the message is
//! the engine's.
//!
//! | engine | status | code |
//! |---|---|---|
//! | `UnknownJob` | 404 | `unknown_job` |
//! | `NotFound` | 404 | `not_found` |
//! | `Invalid` | 400 | `invalid_request` |
//! | `InvalidCron` | 400 | `invalid_cron` |
//! | `TooLarge` | 413 | `payload_too_large` |
//! | `Conflict` | 409 | `conflict` |
//! | `QueueFull` | 429 | `queue_full` |
//! | `Internal` | 500 | `internal` |
//! | `Store` | as [`ApiError`]'s `From<StoreError>` | |
//! | `Item` (of a batch) | its error's, the message prefixed `jobs[i]: ` | |

use offload_api::ErrorCode;

use crate::engine::EngineError;
use crate::error::ApiError;

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::UnknownJob(m) => Self::of(ErrorCode::UnknownJob, m),
            EngineError::NotFound(m) => Self::not_found(m),
            EngineError::Invalid(m) => Self::bad_request(m),
            EngineError::InvalidCron(m) => Self::of(ErrorCode::InvalidCron, m),
            e @ EngineError::TooLarge { .. } => Self::of(ErrorCode::PayloadTooLarge, e.to_string()),
            EngineError::Conflict(m) => Self::of(ErrorCode::Conflict, m),
            EngineError::QueueFull(m) => Self::queue_full(m),
            EngineError::Internal(m) => Self::internal(m),
            EngineError::Store(e) => Self::from(e),
            EngineError::Item { index, error } => {
                let inner = Self::from(*error);
                Self::new(
                    inner.status,
                    inner.code,
                    format!("jobs[{index}]: {}", inner.message),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_keeps_its_status_and_code() {
        let cases = [
            (EngineError::UnknownJob("u".into()), 404, "unknown_job"),
            (EngineError::NotFound("n".into()), 404, "not_found"),
            (EngineError::Invalid("i".into()), 400, "invalid_request"),
            (EngineError::InvalidCron("c".into()), 400, "invalid_cron"),
            (EngineError::Conflict("c".into()), 409, "conflict"),
            (EngineError::QueueFull("q".into()), 429, "queue_full"),
            (EngineError::Internal("x".into()), 500, "internal"),
            (
                EngineError::Store(offload_store::StoreError::NotFound),
                404,
                "not_found",
            ),
        ];
        for (e, status, code) in cases {
            let a = ApiError::from(e);
            assert_eq!(
                (a.status.as_u16(), a.code.as_str()),
                (status, code),
                "{a:?}"
            );
        }
        let too_large = ApiError::from(EngineError::TooLarge {
            field: "params",
            limit: 10,
            key: "http.max_params_bytes",
        });
        assert_eq!(too_large.status.as_u16(), 413);
        assert_eq!(
            too_large.message,
            "params is over 10 bytes of JSON (http.max_params_bytes)"
        );
        let item = ApiError::from(EngineError::Item {
            index: 2,
            error: Box::new(EngineError::UnknownJob("no job \"x\"".into())),
        });
        assert_eq!(
            (item.status.as_u16(), item.code.as_str()),
            (404, "unknown_job")
        );
        assert_eq!(item.message, "jobs[2]: no job \"x\"");
    }
}
