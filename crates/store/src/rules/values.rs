//! Conversions between the model's values and what the engines store: durations and unsigned
//! numbers as `i64` columns, errors as JSON, and the error that names a row the model cannot
//! read ("corrupt").

use std::time::Duration;

use serde_json::Value;

use crate::{JobState, StoreError, StoredError};

/// Milliseconds of a duration, saturated to what an `i64` column holds.
pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// An unsigned number of the model as an `i64` column.
///
/// # Errors
///
/// [`StoreError::Invalid`] past `i64::MAX` (the [`limits`](crate::limits) refuse such numbers
/// first; this is the last guard).
pub fn to_i64(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("{what} {v} is too large")))
}

/// The error for a value read from the database that the model cannot hold.
pub fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(format!("corrupt {what} in the database: {detail}"))
}

/// A stored `i64` as a `u32` (attempts, pids).
///
/// # Errors
///
/// [`corrupt`] when it does not fit.
pub fn to_u32(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt(what, v))
}

/// A stored `i64` as a `u64` (durations, counts).
///
/// # Errors
///
/// [`corrupt`] when it is negative.
pub fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt(what, v))
}

/// A stored state name as a [`JobState`].
///
/// # Errors
///
/// [`corrupt`] for an unknown name.
pub fn state(s: &str) -> Result<JobState, StoreError> {
    s.parse().map_err(|_| corrupt("job state", s))
}

/// An error as stored: `{name, message, stack}`, plus `retry: false` for a non-retryable one.
pub fn error_value(e: &StoredError) -> Value {
    let mut v = serde_json::json!({ "name": e.name, "message": e.message, "stack": e.stack });
    if !e.retry {
        v["retry"] = Value::Bool(false);
    }
    v
}

/// A stored error back.
///
/// # Errors
///
/// [`corrupt`] when the JSON is not `{name, message, stack}`.
pub fn stored_error(v: Option<Value>) -> Result<Option<StoredError>, StoreError> {
    v.map(|v| serde_json::from_value(v).map_err(|e| corrupt("error", e)))
        .transpose()
}

/// JSON stored as text (an engine without a JSON type) back as a value.
///
/// # Errors
///
/// [`corrupt`] naming `what` when the text is not JSON.
pub fn parse_json(s: &str, what: &str) -> Result<Value, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt(what, e))
}
