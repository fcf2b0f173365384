//! What a TCP client reads: a job's result as text, or `NNN:message`.
//!
//! A string result is written raw, any other JSON value serialized (`{"a":1}`, `42`, `null`).
//! Errors match the seed's client check `^[45][0-9]{2}:` and are one line:
//!
//! | code | when |
//! |---|---|
//! | `400:` | not UTF-8, no module name, a malformed queue command, an unusable job file |
//! | `404:` | no job file by that name; no job with that queue id |
//! | `408:` | nothing sent within the idle timeout, or the request took longer than allowed |
//! | `413:` | the request is over the size limit |
//! | `500:` | the job failed (dead or cancelled), or the store failed |
//! | `503:` | too many connections or waiting requests, a full queue (`[limits]`), or the daemon is stopping |
//! | `504:` | the job did not end within `max_wait_ms` (it goes on: ask `queue:get` later) |

use offload_store::{JobRecord, JobState};
use serde_json::Value;

use crate::engine::EngineError;

/// The code of [`LineError::client_gone`] (nginx's "client closed request"; never sent).
const CLIENT_GONE: u16 = 499;

/// An error answered as `NNN:message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineError {
    /// 400, 404, 408, 413, 500, 503 or 504.
    pub(crate) code: u16,
    /// What happened and what to do.
    pub(crate) message: String,
}

impl LineError {
    fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `400:`.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// `404:`.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// `408:`.
    pub(crate) fn timeout(message: impl Into<String>) -> Self {
        Self::new(408, message)
    }

    /// `413:`.
    pub(crate) fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, message)
    }

    /// `500:`.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    /// `503:`.
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, message)
    }

    /// `504:`: the job did not end in time.
    pub(crate) fn job_timeout(message: impl Into<String>) -> Self {
        Self::new(504, message)
    }

    /// The client left while waiting: nothing is answered (never rendered).
    pub(crate) fn client_gone() -> Self {
        Self::new(CLIENT_GONE, "the client closed the connection")
    }

    /// Whether this is [`LineError::client_gone`].
    pub(crate) fn is_client_gone(&self) -> bool {
        self.code == CLIENT_GONE
    }

    /// `NNN:message`, on one line.
    pub(crate) fn render(&self) -> String {
        let one_line: String = self
            .message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!("{}:{}", self.code, one_line)
    }
}

/// The one mapping of the engine's errors to `NNN:` answers: not found → `404:`, too large
/// → `413:`, a full queue → `503:`, any other refusal → `400:`, a failure → `500:`. The
/// message is the engine's.
impl From<EngineError> for LineError {
    fn from(e: EngineError) -> Self {
        use offload_store::StoreError as S;
        match e {
            EngineError::UnknownJob(m) | EngineError::NotFound(m) => Self::not_found(m),
            e @ EngineError::TooLarge { .. } => Self::too_large(e.to_string()),
            // Admission control (`[limits]`).
            EngineError::QueueFull(m) => Self::unavailable(m),
            EngineError::Invalid(m) | EngineError::InvalidCron(m) | EngineError::Conflict(m) => {
                Self::bad_request(m)
            }
            EngineError::Internal(m) => Self::failed(m),
            EngineError::Store(S::NotFound) => Self::not_found("no such job"),
            EngineError::Store(S::Conflict(m) | S::Invalid(m)) => Self::bad_request(m),
            EngineError::Store(e @ (S::Limit(_) | S::IdempotencyConflict { .. })) => {
                Self::bad_request(e.to_string())
            }
            EngineError::Store(other) => {
                tracing::error!(error = %other, "storage failure");
                Self::failed(other.to_string())
            }
            EngineError::Item { index, error } => {
                let inner = Self::from(*error);
                Self::new(inner.code, format!("jobs[{index}]: {}", inner.message))
            }
        }
    }
}

impl From<offload_store::StoreError> for LineError {
    fn from(e: offload_store::StoreError) -> Self {
        EngineError::Store(e).into()
    }
}

/// A result as the client reads it: a string raw, anything else as JSON.
pub(crate) fn result_text(result: Option<&Value>) -> String {
    match result {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "null".to_owned(),
    }
}

/// The answer for a finished job: its result, or `500:` with its error.
/// The result of a job whose worker took the offered client socket and answered on it
/// itself: `{"$offload": "client-replied", …}` (the Node SDK's seed-module runner).
pub(crate) const CLIENT_REPLIED: &str = "client-replied";

/// Whether the job succeeded having answered its client itself ([`CLIENT_REPLIED`]).
pub(crate) fn client_replied(rec: &JobRecord) -> bool {
    rec.state == JobState::Succeeded
        && rec
            .result
            .as_ref()
            .and_then(|r| r.get("$offload"))
            .and_then(serde_json::Value::as_str)
            == Some(CLIENT_REPLIED)
}

pub(crate) fn finished(rec: &JobRecord) -> Result<String, LineError> {
    match rec.state {
        JobState::Succeeded => Ok(result_text(rec.result.as_ref())),
        JobState::Cancelled => Err(LineError::failed(format!("job {} was cancelled", rec.id))),
        _ => Err(LineError::failed(match &rec.error {
            Some(e) => format!("{}: {} (job {})", e.name, e.message, rec.id),
            None => format!("job {} failed ({})", rec.id, rec.state.as_str()),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_raw_and_the_rest_is_json() {
        assert_eq!(result_text(Some(&json!("a\nb"))), "a\nb");
        assert_eq!(result_text(Some(&json!({"a": 1}))), r#"{"a":1}"#);
        assert_eq!(result_text(Some(&json!(42))), "42");
        assert_eq!(result_text(None), "null");
    }

    #[test]
    fn errors_are_one_line_and_match_the_seed_check() {
        let e = LineError::failed("boom\nat line 2");
        assert_eq!(e.render(), "500:boom at line 2");
        for code in [400, 404, 408, 413, 500, 503, 504] {
            let r = LineError::new(code, "x").render();
            let b = r.as_bytes();
            assert!(
                matches!(b[0], b'4' | b'5') && b[1].is_ascii_digit() && b[2].is_ascii_digit(),
                "{r}"
            );
            assert_eq!(b[3], b':');
        }
    }

    #[test]
    fn engine_errors_keep_their_line_codes() {
        use offload_store::StoreError as S;
        let cases = [
            (EngineError::UnknownJob("u".into()), "404:u"),
            (EngineError::NotFound("n".into()), "404:n"),
            (EngineError::Invalid("i".into()), "400:i"),
            (EngineError::InvalidCron("c".into()), "400:c"),
            (EngineError::Conflict("c".into()), "400:c"),
            (EngineError::QueueFull("q".into()), "503:q"),
            (EngineError::Internal("x".into()), "500:x"),
            (
                EngineError::TooLarge {
                    field: "params",
                    limit: 10,
                    key: "http.max_params_bytes",
                },
                "413:params is over 10 bytes of JSON (http.max_params_bytes)",
            ),
            (EngineError::Store(S::NotFound), "404:no such job"),
            (EngineError::Store(S::Conflict("m".into())), "400:m"),
            (
                EngineError::Store(S::Engine("disk".into())),
                "500:storage engine error: disk",
            ),
            (
                EngineError::Item {
                    index: 1,
                    error: Box::new(EngineError::QueueFull("q".into())),
                },
                "503:jobs[1]: q",
            ),
        ];
        for (e, line) in cases {
            assert_eq!(LineError::from(e).render(), line);
        }
    }
}
