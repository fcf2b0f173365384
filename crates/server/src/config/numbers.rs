//! The numbers of a configuration: `max_timeout_ms`, the lease, retention and idempotency
//! hours, `[history]`'s retention and flush period, `[lines] max_attempts`, and each pool's `timeout_ms`, `max_attempts` and
//! `backoff_ms`, checked against the same bounds as jobs (`offload_store::limits`). Out of
//! range is a [`ConfigError`] at start, naming the field and its range.

use std::time::Duration;

use offload_store::limits::{self as bounds, LimitError};

use super::limits::MAX_LOG_BYTES_PER_ATTEMPT;
use super::{Isolation, ServeConfig};
use crate::error::ConfigError;

/// The longest lease (1 day).
const MAX_LEASE_MS: u64 = 24 * 3600 * 1000;
/// The longest retention (10 years).
const MAX_RETENTION_HOURS: u64 = 87_600;
/// The longest idempotency window (1 year).
const MAX_IDEMPOTENCY_HOURS: u64 = 8_760;
/// The longest history retention (1 year).
const MAX_HISTORY_DAYS: u64 = 365;
/// The bounds of the history's flush period, ms.
const HISTORY_FLUSH_MS: std::ops::RangeInclusive<u64> = 100..=60_000;

/// The default `sqlite_cache_mb`: SQLite's page cache per connection.
pub(crate) const DEFAULT_SQLITE_CACHE_MB: u32 = 2;
/// The largest `sqlite_cache_mb` (1 GiB a connection).
const MAX_SQLITE_CACHE_MB: u32 = 1_024;

/// `sqlite_cache_mb`, checked: 1..=1024.
pub(crate) fn sqlite_cache_mb(mb: u32) -> Result<u32, ConfigError> {
    if !(1..=MAX_SQLITE_CACHE_MB).contains(&mb) {
        return Err(ConfigError::Invalid(format!(
            "sqlite_cache_mb {mb} is out of range: 1..={MAX_SQLITE_CACHE_MB}"
        )));
    }
    Ok(mb)
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
/// `timeout_ms`, `max_attempts`, `backoff_ms` and `backoff`.
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
    let log_bytes = cfg.limits.max_log_bytes_per_attempt;
    if log_bytes > MAX_LOG_BYTES_PER_ATTEMPT {
        let e = LimitError::new(
            "max_log_bytes_per_attempt",
            log_bytes,
            format!("0..={MAX_LOG_BYTES_PER_ATTEMPT} (16 MiB)"),
        );
        return Err(ConfigError::Invalid(format!("[limits] {e}")));
    }
    let workers = cfg.limits.max_workers_per_pool;
    if workers > offload_pool::MAX_WORKERS {
        let e = LimitError::new(
            "max_workers_per_pool",
            workers,
            format!("1..={} (a pool's own bound)", offload_pool::MAX_WORKERS),
        );
        return Err(ConfigError::Invalid(format!("[limits] {e}")));
    }
    let log_attempts = cfg.limits.max_log_attempts_per_job;
    if !(1..=offload_store::logs::MAX_LOG_ATTEMPTS).contains(&log_attempts) {
        let e = LimitError::new(
            "max_log_attempts_per_job",
            log_attempts,
            format!("1..={}", offload_store::logs::MAX_LOG_ATTEMPTS),
        );
        return Err(ConfigError::Invalid(format!("[limits] {e}")));
    }
    if !(1..=MAX_HISTORY_DAYS).contains(&cfg.history.retention_days) {
        return bad(format!(
            "[history] retention_days {} is out of range: 1..={MAX_HISTORY_DAYS}",
            cfg.history.retention_days
        ));
    }
    let flush = u64::try_from(cfg.history.flush.as_millis()).unwrap_or(u64::MAX);
    if !HISTORY_FLUSH_MS.contains(&flush) {
        return bad(format!(
            "[history] flush_ms {flush} is out of range: {}..={}",
            HISTORY_FLUSH_MS.start(),
            HISTORY_FLUSH_MS.end()
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
        if let Some(b) = &p.backoff {
            crate::backoff::to_store(b).check().map_err(pool)?;
        }
        if let Some(n) = p.claim_ahead {
            let most = p.max_claim_ahead();
            if n > most {
                let range = match p.isolation {
                    Isolation::Pool => format!("0..={most} (3 × max × concurrency)"),
                    Isolation::Process => "0 (a process per job claims nothing ahead)".into(),
                };
                return Err(pool(LimitError::new("claim_ahead", n, range)));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FileConfig, PoolSection};

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
        // Logs per attempt: at most 16 MiB, named in the refusal.
        let mut c = ServeConfig::new("jobs", ".offload");
        c.limits.max_log_bytes_per_attempt = MAX_LOG_BYTES_PER_ATTEMPT + 1;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("max_log_bytes_per_attempt"), "{e}");
        c.limits.max_log_bytes_per_attempt = MAX_LOG_BYTES_PER_ATTEMPT;
        assert!(c.validate().is_ok());
        // Workers per pool: at most offload_pool::MAX_WORKERS, named in the refusal.
        c.limits.max_workers_per_pool = offload_pool::MAX_WORKERS + 1;
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("max_workers_per_pool") && e.contains("1024"),
            "{e}"
        );
        c.limits.max_workers_per_pool = offload_pool::MAX_WORKERS;
        assert!(c.validate().is_ok());
        // Attempts whose logs a retry keeps: 1..=1000, named in the refusal.
        for bad in [0, offload_store::logs::MAX_LOG_ATTEMPTS + 1] {
            c.limits.max_log_attempts_per_job = bad;
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("max_log_attempts_per_job"), "{e}");
        }
        c.limits.max_log_attempts_per_job = offload_store::logs::MAX_LOG_ATTEMPTS;
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
        // SQLite's page cache per connection: 1..=1024 MiB, named in the refusal.
        for bad in ["sqlite_cache_mb = 0", "sqlite_cache_mb = 1025"] {
            let e = c.apply_file(toml::from_str(bad).unwrap()).unwrap_err();
            assert!(e.to_string().contains("sqlite_cache_mb"), "{e}");
        }
        assert_eq!(c.sqlite_cache_mb, DEFAULT_SQLITE_CACHE_MB);
        c.apply_file(toml::from_str("sqlite_cache_mb = 16").unwrap())
            .unwrap();
        assert_eq!(c.sqlite_cache_mb, 16);
    }

    #[test]
    fn claim_ahead_is_bounded_by_the_pool_queue() {
        // Default: none; 3 × max × concurrency at most; none for a process per job.
        let p: PoolSection = toml::from_str("name = \"p\"\nmax = 3\nconcurrency = 2").unwrap();
        assert_eq!(
            (p.capacity(), p.claim_ahead(), p.max_claim_ahead()),
            (6, 0, 18)
        );
        assert!(pool(|p| p.claim_ahead = Some(0)).validate().is_ok());
        assert!(pool(|p| p.claim_ahead = Some(6)).validate().is_ok());
        let e = pool(|p| p.claim_ahead = Some(7))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("pool \"p\": claim_ahead 7 is out of range: 0..=6 (3 × max × concurrency)"),
            "{e}"
        );
        let process = |n| {
            pool(|p| {
                p.isolation = Isolation::Process;
                p.claim_ahead = Some(n);
            })
        };
        assert!(process(0).validate().is_ok());
        let e = process(1).validate().unwrap_err().to_string();
        assert!(
            e.contains("claim_ahead 1 is out of range: 0 (a process per job"),
            "{e}"
        );
        let p: PoolSection = toml::from_str("name = \"p\"\nisolation = \"process\"").unwrap();
        assert_eq!(p.claim_ahead(), 0);
    }

    #[test]
    fn history_numbers_are_bounded() {
        let with = |toml_text: &str| {
            let mut c = ServeConfig::new("jobs", ".offload");
            c.apply_file(toml::from_str(toml_text).unwrap()).unwrap();
            c.validate().map(|()| c)
        };
        let c = with("[history]\nretention_days = 30\nflush_ms = 200").unwrap();
        assert_eq!(c.history.retention_days, 30);
        assert_eq!(c.history.flush, Duration::from_millis(200));
        let e = with("[history]\nretention_days = 0")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[history] retention_days 0 is out of range: 1..=365"),
            "{e}"
        );
        assert!(with("[history]\nretention_days = 366").is_err());
        let e = with("[history]\nflush_ms = 99").unwrap_err().to_string();
        assert!(
            e.contains("[history] flush_ms 99 is out of range: 100..=60000"),
            "{e}"
        );
        assert!(with("[history]\nflush_ms = 18446744073709551615").is_err());
    }
}
