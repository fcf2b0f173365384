//! The daemon's number rules: the bounds of `offload_store::limits` (one place for every path:
//! HTTP submit and batch, the line protocol, cron, the store) plus what depends on this daemon's
//! configuration (`max_timeout_ms`) and clock (`delay_ms` / `run_at` at most one year ahead).
//! Every refusal is a 400 `invalid_request` (or a configuration error) naming the field and
//! the limit. Times are computed with checked or saturating arithmetic: no wrap, no panic.

use std::time::Duration;

use offload_store::limits::{self as bounds, LimitError};
use offload_store::{Millis, NewJob};

use crate::config::ServeConfig;
use crate::error::{ApiError, ConfigError};

/// The longest lease (1 day).
pub(crate) const MAX_LEASE_MS: u64 = 24 * 3600 * 1000;
/// The longest retention (10 years).
pub(crate) const MAX_RETENTION_HOURS: u64 = 87_600;
/// The longest idempotency window (1 year).
pub(crate) const MAX_IDEMPOTENCY_HOURS: u64 = 8_760;

/// A refusal as the API's 400.
pub(crate) fn invalid(e: LimitError) -> ApiError {
    ApiError::bad_request(e.to_string())
}

/// Checks a prepared job against the bounds and the configured maximum timeout.
pub(crate) fn check_job(job: &NewJob, max_timeout_ms: u64) -> Result<(), ApiError> {
    bounds::check_job(job, max_timeout_ms).map_err(invalid)
}

/// A submit's `run_at` from its `delay_ms` or `run_at` (exclusive), at most one year ahead of
/// `now`.
pub(crate) fn run_at(
    delay_ms: Option<u64>,
    run_at: Option<Millis>,
    now: Millis,
) -> Result<Option<Millis>, ApiError> {
    match (delay_ms, run_at) {
        (Some(_), Some(_)) => Err(ApiError::bad_request("give delay_ms or run_at, not both")),
        (Some(d), None) => bounds::run_at_after(d, now).map(Some).map_err(invalid),
        (None, Some(at)) => bounds::check_run_at(at, now)
            .map(|()| Some(at))
            .map_err(invalid),
        (None, None) => Ok(None),
    }
}

/// When a failed attempt runs again: `backoff_ms · 2^(attempt-1)`, at most one hour after `now`.
pub(crate) fn retry_at(now: Millis, backoff_ms: u64, attempt: u32) -> Millis {
    let shift = attempt.saturating_sub(1).min(20);
    let delay = backoff_ms
        .saturating_mul(1u64 << shift)
        .min(bounds::MAX_BACKOFF_MS);
    now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX))
}

/// `h` hours as a duration, for `field` (bounded, so it never overflows).
pub(crate) fn hours(field: &'static str, h: u64) -> Result<Duration, ConfigError> {
    let max = match field {
        "retention_hours" => MAX_RETENTION_HOURS,
        _ => MAX_IDEMPOTENCY_HOURS,
    };
    if h > max {
        return Err(ConfigError::Invalid(format!(
            "{field} {h} is out of range: 0..={max}"
        )));
    }
    Ok(Duration::from_secs(h * 3600))
}

/// Checks the numbers of a configuration: `max_timeout_ms`, the lease, and each pool's
/// `timeout_ms`, `max_attempts` and `backoff_ms`.
pub(crate) fn check_config(cfg: &ServeConfig) -> Result<(), ConfigError> {
    let bad = |what: String| Err(ConfigError::Invalid(what));
    if !(1..=bounds::MAX_TIMEOUT_MS).contains(&cfg.max_timeout_ms) {
        return bad(format!(
            "max_timeout_ms {} is out of range: 1..={} ({})",
            cfg.max_timeout_ms,
            bounds::MAX_TIMEOUT_MS,
            bounds::human_ms(bounds::MAX_TIMEOUT_MS)
        ));
    }
    let lease = u64::try_from(cfg.lease.as_millis()).unwrap_or(u64::MAX);
    if lease > MAX_LEASE_MS {
        return bad(format!(
            "lease_ms {lease} is out of range: 100..={MAX_LEASE_MS} (1 day)"
        ));
    }
    if !(1..=bounds::MAX_ATTEMPTS).contains(&cfg.lines.max_attempts) {
        return bad(format!(
            "[lines] max_attempts {} is out of range: 1..={}",
            cfg.lines.max_attempts,
            bounds::MAX_ATTEMPTS
        ));
    }
    for p in &cfg.pools {
        let pool = |e: LimitError| ConfigError::Invalid(format!("pool {:?}: {e}", p.name));
        if let Some(t) = p.timeout_ms {
            bounds::check_timeout(t, cfg.max_timeout_ms).map_err(pool)?;
        }
        if let Some(n) = p.max_attempts {
            if !(1..=bounds::MAX_ATTEMPTS).contains(&n) {
                return Err(pool(LimitError::new(
                    "max_attempts",
                    n,
                    format!("1..={}", bounds::MAX_ATTEMPTS),
                )));
            }
        }
        if let Some(b) = p.backoff_ms {
            if b > bounds::MAX_BACKOFF_MS {
                return Err(pool(LimitError::new(
                    "backoff_ms",
                    b,
                    format!("0..={} (1 hour)", bounds::MAX_BACKOFF_MS),
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FileConfig, PoolSection};

    #[test]
    fn delays_and_run_at_are_bounded_without_wrapping() {
        let now = 1_795_000_000_000;
        let e = run_at(Some(i64::MAX as u64), None, now).unwrap_err();
        assert_eq!(e.code, "invalid_request");
        assert!(e.message.starts_with("delay_ms "), "{}", e.message);
        assert!(e.message.contains("365 days"), "{}", e.message);
        assert!(run_at(Some(u64::MAX), None, now).is_err());
        assert_eq!(run_at(Some(10), None, now).unwrap(), Some(now + 10));
        let e = run_at(None, Some(i64::MAX), now).unwrap_err();
        assert!(e.message.starts_with("run_at "), "{}", e.message);
        assert!(run_at(None, Some(-1), now).is_err());
        assert!(run_at(Some(1), Some(1), now).is_err());
        assert_eq!(run_at(None, None, now).unwrap(), None);
    }

    #[test]
    fn retries_never_overflow() {
        assert_eq!(retry_at(1000, 100, 1), 1100);
        assert_eq!(retry_at(1000, 100, 3), 1400);
        assert_eq!(retry_at(0, u64::MAX, u32::MAX), 3_600_000);
        assert_eq!(retry_at(i64::MAX, 1, 1), i64::MAX);
    }

    fn pool(f: impl FnOnce(&mut PoolSection)) -> ServeConfig {
        let mut cfg = ServeConfig::new("jobs", ".offload");
        let mut p: PoolSection = toml::from_str("name = \"p\"").unwrap();
        f(&mut p);
        cfg.pools.push(p);
        cfg
    }

    #[test]
    fn configured_numbers_are_bounded() {
        assert!(pool(|_| {}).validate().is_ok());
        let e = pool(|p| p.timeout_ms = Some(100_000_000_000))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "pool \"p\": timeout_ms 100000000000 is out of range: 1..=604800000 (7 days)"
            ),
            "{e}"
        );
        assert!(pool(|p| p.max_attempts = Some(0)).validate().is_err());
        assert!(pool(|p| p.backoff_ms = Some(u64::MAX)).validate().is_err());
        let mut c = ServeConfig::new("jobs", ".offload");
        c.max_timeout_ms = 0;
        assert!(c.validate().is_err());
        c.max_timeout_ms = bounds::MAX_TIMEOUT_MS + 1;
        assert!(c.validate().is_err());
        // A larger configured maximum admits a larger pool timeout.
        let mut c = pool(|p| p.timeout_ms = Some(30 * 24 * 3600 * 1000));
        assert!(c.validate().is_err());
        c.max_timeout_ms = 30 * 24 * 3600 * 1000;
        assert!(c.validate().is_ok());
        // Hours never overflow.
        let mut c = ServeConfig::new("jobs", ".offload");
        let file: FileConfig = toml::from_str("retention_hours = 18446744073709551615").unwrap();
        assert!(c.apply_file(file).is_err());
        let file: FileConfig = toml::from_str("idempotency_hours = 8761").unwrap();
        assert!(c.apply_file(file).is_err());
        let file: FileConfig = toml::from_str("idempotency_hours = 2").unwrap();
        c.apply_file(file).unwrap();
        assert_eq!(c.idempotency_window, Duration::from_secs(7200));
    }
}
