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

/// Whether the first job of an idempotency key (still within the window; keys are scoped by job
/// name, so it has the same name) may answer `job`: only with the same params (compared as JSON
/// values, so key order does not matter).
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

/// The refusal of a change that would make a second unfinished job of one name hold one unique
/// key (a `retry` of a finished unique job while another of its kind is active); both engines
/// map their unique-index violation to it.
pub fn unique_conflict() -> StoreError {
    StoreError::Conflict(
        "an unfinished job of the same name holds the same unique key (unique = \"while-active\"); \
         wait for it to end"
            .into(),
    )
}

/// The key of a `unique` job (`unique = "while-active"`), `None` for another: `key:<key>` when
/// it has an idempotency key, else `params:<sha-256 of its params>` (as canonical JSON: object
/// keys sorted, so their order does not matter). Together with the job's name, at most one
/// unfinished job holds it (a unique index of both engines).
pub fn unique_key(job: &NewJob) -> Option<String> {
    if !job.unique {
        return None;
    }
    if let Some(key) = &job.idempotency_key {
        return Some(format!("key:{key}"));
    }
    use sha2::Digest;
    let mut text = String::new();
    canonical(&job.params, &mut text);
    let digest = sha2::Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("params:{hex}"))
}

/// `v` as JSON with every object's keys sorted.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_unique_key_is_the_key_or_the_params_hash_whatever_their_order() {
        let mut job = NewJob {
            job: "a".into(),
            params: Value::Null,
            pool: "p".into(),
            priority: 0,
            run_at: None,
            timeout_ms: None,
            max_attempts: 1,
            backoff_ms: 0,
            backoff: None,
            keep_result_ms: None,
            key_ttl_ms: None,
            idempotency_key: None,
            cron: None,
            unique: false,
            after: Vec::new(),
            after_policy: Default::default(),
        };
        assert_eq!(unique_key(&job), None);
        job.unique = true;
        job.params = json!({"b": [1, {"y": 2, "x": 1}], "a": "s"});
        let first = unique_key(&job).unwrap();
        assert!(first.starts_with("params:"), "{first}");
        job.params = json!({"a": "s", "b": [1, {"x": 1, "y": 2}]});
        assert_eq!(unique_key(&job).unwrap(), first);
        job.params = json!({"a": "t", "b": [1, {"x": 1, "y": 2}]});
        assert_ne!(unique_key(&job).unwrap(), first);
        job.idempotency_key = Some("k1".into());
        assert_eq!(unique_key(&job).unwrap(), "key:k1");
    }
}
