//! The bounds of every number a job carries: one place, used by both engines' validation and by
//! the daemon (which adds its configured maximum timeout and the "at most one year ahead" rule
//! for `run_at`, both relative to its own settings and clock).
//!
//! | field | range | why |
//! |---|---|---|
//! | `timeout_ms` | `1..=`[`MAX_TIMEOUT_MS`] (365 days; the daemon's default maximum is [`DEFAULT_MAX_TIMEOUT_MS`], 7 days) | timers hold it; nothing runs for a year |
//! | `run_at` | `0..=`[`MAX_RUN_AT`] (year 9999) here; the daemon also refuses more than [`MAX_DELAY_MS`] (365 days) ahead | no wrap in `run_at − now` arithmetic |
//! | `delay_ms` | `0..=`[`MAX_DELAY_MS`] (365 days) | the same |
//! | `max_attempts` | `1..=`[`MAX_ATTEMPTS`] (100) | |
//! | attempts of one job, across manual retries | at most [`MAX_ATTEMPTS_PER_JOB`] (1,000): a retry that would pass it is refused, a retry's round is cut to fit | a job's view lists every attempt; an endless retry loop would grow it without end |
//! | `backoff_ms` | `0..=`[`MAX_BACKOFF_MS`] (1 hour, also the cap of one retry delay) | |
//! | `priority` | [`MIN_PRIORITY`]`..=`[`MAX_PRIORITY`] (−1,000..=1,000) | |
//! | `idempotency_key` | 1..=[`MAX_IDEMPOTENCY_KEY`] (256) bytes | |
//! | `backoff` | each delay `0..=`[`MAX_BACKOFF_MS`], a list of 1..=32 (`rules::retry`) | |
//! | `key_ttl_ms` | `1..=`[`MAX_KEY_TTL_MS`] (365 days, `idempotency_hours`' bound) | |
//! | `after` | at most [`MAX_AFTER`] (64) ids, each an existing job or an earlier item of the batch | a release touches each edge once |
//! | `keep_result_ms` | `0..=`[`MAX_KEEP_RESULT_MS`] (3,650 days, the daemon's longest retention) | no wrap in `updated_at + keep_result_ms` |
//!
//! A refusal is a [`LimitError`] naming the field, the value and the limit.

use std::fmt;

use thiserror::Error;

use crate::{Millis, NewJob};

const DAY_MS: u64 = 24 * 3600 * 1000;

/// The largest timeout any configuration may allow (365 days).
pub const MAX_TIMEOUT_MS: u64 = 365 * DAY_MS;
/// The daemon's default maximum timeout (`max_timeout_ms`, 7 days).
pub const DEFAULT_MAX_TIMEOUT_MS: u64 = 7 * DAY_MS;
/// How far ahead a job may be scheduled (`delay_ms`, `run_at − now`): 365 days.
pub const MAX_DELAY_MS: u64 = 365 * DAY_MS;
/// The latest `run_at` a store accepts at all: 9999-12-31T23:59:59.999Z.
pub const MAX_RUN_AT: Millis = 253_402_300_799_999;
/// The most attempts of a job.
pub const MAX_ATTEMPTS: u32 = 100;
/// The most attempts one job may have in all, manual retries included (each retry numbers its
/// attempts on after the earlier ones, and the job keeps a record of each).
pub const MAX_ATTEMPTS_PER_JOB: u32 = 1_000;
/// The largest retry backoff base (1 hour; one retry delay is capped at 1 hour anyway).
pub const MAX_BACKOFF_MS: u64 = 3_600_000;
/// The lowest priority.
pub const MIN_PRIORITY: i32 = -1000;
/// The highest priority.
pub const MAX_PRIORITY: i32 = 1000;
/// The longest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 256;
/// The longest idempotency window a submit may ask (365 days, as `idempotency_hours`' bound).
pub const MAX_KEY_TTL_MS: u64 = 365 * DAY_MS;
/// The longest a succeeded job may ask to be kept (3,650 days, as `retention_hours`' bound).
pub const MAX_KEEP_RESULT_MS: u64 = 3650 * DAY_MS;

/// The most jobs one job may run after (`after`, [`crate::after`]).
pub const MAX_AFTER: usize = 64;

/// A number (or length) out of its range.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field} {value} is out of range: {limit}")]
pub struct LimitError {
    /// The field, as named on the wire (`timeout_ms`, `delay_ms`, …).
    pub field: &'static str,
    /// The value given.
    pub value: String,
    /// The rule, e.g. `at most 604800000 (7 days)`.
    pub limit: String,
}

impl LimitError {
    /// A refusal of `value` for `field` with the rule `limit`.
    pub fn new(field: &'static str, value: impl fmt::Display, limit: impl Into<String>) -> Self {
        Self {
            field,
            value: value.to_string(),
            limit: limit.into(),
        }
    }
}

/// `ms` as a short human duration (`7 days`, `1 hour`, `250 ms`) for error texts.
pub fn human_ms(ms: u64) -> String {
    let units = [
        (DAY_MS, "day"),
        (3_600_000, "hour"),
        (60_000, "minute"),
        (1000, "second"),
    ];
    for (unit, name) in units {
        if ms >= unit && ms.is_multiple_of(unit) {
            let n = ms / unit;
            return format!("{n} {name}{}", if n == 1 { "" } else { "s" });
        }
    }
    format!("{ms} ms")
}

/// Checks `timeout_ms` against `max` (the configured maximum, itself ≤ [`MAX_TIMEOUT_MS`]).
///
/// # Errors
///
/// [`LimitError`] for 0 or over `max`.
pub fn check_timeout(timeout_ms: u64, max: u64) -> Result<(), LimitError> {
    let max = max.min(MAX_TIMEOUT_MS);
    if timeout_ms == 0 || timeout_ms > max {
        return Err(LimitError::new(
            "timeout_ms",
            timeout_ms,
            format!("1..={max} ({})", human_ms(max)),
        ));
    }
    Ok(())
}

/// Checks a `delay_ms` and turns it into a `run_at` from `now`, with checked arithmetic.
///
/// # Errors
///
/// [`LimitError`] over [`MAX_DELAY_MS`].
pub fn run_at_after(delay_ms: u64, now: Millis) -> Result<Millis, LimitError> {
    let too_far = || {
        LimitError::new(
            "delay_ms",
            delay_ms,
            format!("at most {MAX_DELAY_MS} ({})", human_ms(MAX_DELAY_MS)),
        )
    };
    if delay_ms > MAX_DELAY_MS {
        return Err(too_far());
    }
    i64::try_from(delay_ms)
        .ok()
        .and_then(|d| now.checked_add(d))
        .ok_or_else(too_far)
}

/// Checks a client's `run_at`: not negative, and at most [`MAX_DELAY_MS`] after `now`.
///
/// # Errors
///
/// [`LimitError`] naming `run_at`.
pub fn check_run_at(run_at: Millis, now: Millis) -> Result<(), LimitError> {
    let latest = now.saturating_add(MAX_DELAY_MS as i64).min(MAX_RUN_AT);
    if !(0..=latest).contains(&run_at) {
        return Err(LimitError::new(
            "run_at",
            run_at,
            format!(
                "0..={latest} (ms since the epoch, at most {} ahead)",
                human_ms(MAX_DELAY_MS)
            ),
        ));
    }
    Ok(())
}

/// Checks every number of a job against the absolute bounds above (what a store accepts);
/// `max_timeout_ms` is the caller's maximum ([`MAX_TIMEOUT_MS`] for a store).
///
/// # Errors
///
/// The first [`LimitError`].
pub fn check_job(job: &NewJob, max_timeout_ms: u64) -> Result<(), LimitError> {
    if let Some(t) = job.timeout_ms {
        check_timeout(t, max_timeout_ms)?;
    }
    if let Some(at) = job.run_at {
        if !(0..=MAX_RUN_AT).contains(&at) {
            return Err(LimitError::new(
                "run_at",
                at,
                format!("0..={MAX_RUN_AT} (ms since the epoch)"),
            ));
        }
    }
    if !(1..=MAX_ATTEMPTS).contains(&job.max_attempts) {
        return Err(LimitError::new(
            "max_attempts",
            job.max_attempts,
            format!("1..={MAX_ATTEMPTS}"),
        ));
    }
    if let Some(k) = job.keep_result_ms.filter(|&k| k > MAX_KEEP_RESULT_MS) {
        return Err(LimitError::new(
            "keep_result_ms",
            k,
            format!(
                "0..={MAX_KEEP_RESULT_MS} ({})",
                human_ms(MAX_KEEP_RESULT_MS)
            ),
        ));
    }
    if let Some(t) = job.key_ttl_ms.filter(|t| !(1..=MAX_KEY_TTL_MS).contains(t)) {
        return Err(LimitError::new(
            "key_ttl_ms",
            t,
            format!("1..={MAX_KEY_TTL_MS} ({})", human_ms(MAX_KEY_TTL_MS)),
        ));
    }
    // A chosen backoff first: `backoff_ms` is its first delay, so its own field names the fault.
    if let Some(b) = &job.backoff {
        b.check()?;
    }
    if job.backoff_ms > MAX_BACKOFF_MS {
        return Err(LimitError::new(
            "backoff_ms",
            job.backoff_ms,
            format!("0..={MAX_BACKOFF_MS} ({})", human_ms(MAX_BACKOFF_MS)),
        ));
    }
    if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&job.priority) {
        return Err(LimitError::new(
            "priority",
            job.priority,
            format!("{MIN_PRIORITY}..={MAX_PRIORITY}"),
        ));
    }
    check_after_len(job.after.len())?;
    if let Some(k) = &job.idempotency_key {
        if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY {
            return Err(LimitError::new(
                "idempotency_key",
                format!("of {} bytes", k.len()),
                format!("1..={MAX_IDEMPOTENCY_KEY} bytes"),
            ));
        }
    }
    Ok(())
}

/// Checks the number of `after` entries (`after::check_len`).
///
/// # Errors
///
/// [`LimitError`] over [`MAX_AFTER`].
pub fn check_after_len(n: usize) -> Result<(), LimitError> {
    if n > MAX_AFTER {
        return Err(LimitError::new(
            "after",
            format!("of {n} ids"),
            format!("at most {MAX_AFTER} ids"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> NewJob {
        NewJob {
            job: "a".into(),
            params: serde_json::Value::Null,
            pool: "p".into(),
            priority: 0,
            run_at: None,
            timeout_ms: Some(1000),
            max_attempts: 3,
            backoff_ms: 1000,
            backoff: None,
            keep_result_ms: None,
            key_ttl_ms: None,
            idempotency_key: None,
            cron: None,
            unique: false,
            after: Vec::new(),
            after_policy: Default::default(),
        }
    }

    #[test]
    fn every_bound_is_inclusive_and_named() {
        assert!(check_job(&job(), MAX_TIMEOUT_MS).is_ok());
        type Change = Box<dyn Fn(&mut NewJob)>;
        let cases: Vec<(&str, Change)> = vec![
            ("timeout_ms", Box::new(|j| j.timeout_ms = Some(0))),
            (
                "timeout_ms",
                Box::new(|j| j.timeout_ms = Some(MAX_TIMEOUT_MS + 1)),
            ),
            ("run_at", Box::new(|j| j.run_at = Some(-1))),
            ("run_at", Box::new(|j| j.run_at = Some(MAX_RUN_AT + 1))),
            ("max_attempts", Box::new(|j| j.max_attempts = 0)),
            (
                "max_attempts",
                Box::new(|j| j.max_attempts = MAX_ATTEMPTS + 1),
            ),
            (
                "backoff_ms",
                Box::new(|j| j.backoff_ms = MAX_BACKOFF_MS + 1),
            ),
            ("priority", Box::new(|j| j.priority = MAX_PRIORITY + 1)),
            ("priority", Box::new(|j| j.priority = i32::MIN)),
            (
                "idempotency_key",
                Box::new(|j| j.idempotency_key = Some(String::new())),
            ),
            (
                "idempotency_key",
                Box::new(|j| j.idempotency_key = Some("k".repeat(257))),
            ),
        ];
        for (field, change) in cases {
            let mut j = job();
            change(&mut j);
            let e = check_job(&j, MAX_TIMEOUT_MS).unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.to_string().starts_with(field), "{e}");
        }
        let mut edge = job();
        edge.timeout_ms = Some(MAX_TIMEOUT_MS);
        edge.run_at = Some(MAX_RUN_AT);
        edge.max_attempts = MAX_ATTEMPTS;
        edge.backoff_ms = MAX_BACKOFF_MS;
        edge.priority = MIN_PRIORITY;
        edge.idempotency_key = Some("k".repeat(256));
        assert!(check_job(&edge, MAX_TIMEOUT_MS).is_ok());
    }

    #[test]
    fn a_configured_maximum_timeout_is_named_in_the_refusal() {
        let e = check_timeout(100_000_000_000, DEFAULT_MAX_TIMEOUT_MS).unwrap_err();
        assert_eq!(
            e.to_string(),
            "timeout_ms 100000000000 is out of range: 1..=604800000 (7 days)"
        );
        assert!(check_timeout(DEFAULT_MAX_TIMEOUT_MS, DEFAULT_MAX_TIMEOUT_MS).is_ok());
        // A maximum over the ceiling is capped by it.
        assert!(check_timeout(MAX_TIMEOUT_MS + 1, u64::MAX).is_err());
    }

    #[test]
    fn delays_never_wrap() {
        let now = 1_795_000_000_000;
        assert_eq!(run_at_after(0, now), Ok(now));
        assert_eq!(
            run_at_after(MAX_DELAY_MS, now),
            Ok(now + MAX_DELAY_MS as i64)
        );
        for d in [MAX_DELAY_MS + 1, i64::MAX as u64, u64::MAX] {
            assert_eq!(run_at_after(d, now).unwrap_err().field, "delay_ms");
        }
        // Even with a clock at the end of time.
        assert!(run_at_after(1, i64::MAX).is_err());
        assert!(check_run_at(now + MAX_DELAY_MS as i64, now).is_ok());
        assert!(check_run_at(now + MAX_DELAY_MS as i64 + 1, now).is_err());
        assert!(check_run_at(-1, now).is_err());
        assert!(check_run_at(i64::MAX, now).is_err());
        assert!(check_run_at(i64::MIN, now).is_err());
        assert!(check_run_at(0, now).is_ok());
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(human_ms(DEFAULT_MAX_TIMEOUT_MS), "7 days");
        assert_eq!(human_ms(3_600_000), "1 hour");
        assert_eq!(human_ms(1500), "1500 ms");
    }
}
