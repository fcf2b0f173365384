//! What a submitted job must satisfy before it reaches an engine, and when an idempotency key
//! answers with the first job.

use serde_json::Value;

use super::values::to_i64;
use crate::limits::{check_job, MAX_TIMEOUT_MS};
use crate::{NewJob, StoreError};

/// Checks a job against the [`limits`](crate::limits) (a store accepts timeouts up to
/// [`MAX_TIMEOUT_MS`]) and that its unsigned numbers fit the engines' `i64` columns.
///
/// # Errors
///
/// [`StoreError::Limit`] naming the field out of range; [`StoreError::Invalid`] for a number
/// past `i64::MAX`.
pub fn validate(job: &NewJob) -> Result<(), StoreError> {
    check_job(job, MAX_TIMEOUT_MS)?;
    if let Some(t) = job.timeout_ms {
        to_i64(t, "timeout_ms")?;
    }
    to_i64(job.backoff_ms, "backoff_ms")?;
    Ok(())
}

/// [`validate`]s every job of a batch: one bad job refuses the whole batch, before any engine
/// work.
///
/// # Errors
///
/// The first job's error.
pub fn validate_all(jobs: &[NewJob]) -> Result<(), StoreError> {
    jobs.iter().try_for_each(validate)
}

/// Whether the first job of an idempotency key (still within the window) may answer `job`: only
/// the same job name with the same params (compared as JSON values, so key order does not
/// matter).
///
/// # Errors
///
/// [`StoreError::IdempotencyConflict`] naming the key (and nothing of the first job) otherwise.
pub fn same_job(
    key: &str,
    job: &NewJob,
    first_name: Option<&str>,
    first_params: Option<&Value>,
) -> Result<(), StoreError> {
    if first_name != Some(job.job.as_str()) || first_params != Some(&job.params) {
        return Err(StoreError::IdempotencyConflict {
            key: key.to_owned(),
        });
    }
    Ok(())
}
