//! The numbers of the contract, as the document states them (`#[schema]` attributes take
//! literals: these constants name them, and the daemon's tests check them against
//! `offload_store::limits` and the document).

/// Lowest `priority`.
pub const MIN_PRIORITY: i32 = -1000;
/// Highest `priority`.
pub const MAX_PRIORITY: i32 = 1000;
/// Largest `delay_ms` (365 days).
pub const MAX_DELAY_MS: u64 = 31_536_000_000;
/// Most `max_attempts`.
pub const MAX_ATTEMPTS: u32 = 100;
/// Longest retry delay, and the most `max_delay_ms` of a backoff (one hour).
pub const MAX_BACKOFF_MS: u64 = 3_600_000;
/// Longest `key_ttl_ms` (365 days).
pub const MAX_KEY_TTL_MS: u64 = 31_536_000_000;
/// Most ids in a job's `after`.
pub const MAX_AFTER: usize = 64;
/// Longest `keep_result_ms` (3,650 days).
pub const MAX_KEEP_RESULT_MS: u64 = 315_360_000_000;
/// Most entries of a `list` backoff.
pub const MAX_BACKOFF_LIST: usize = 32;
/// Longest `idempotency_key`, in bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 256;
/// The `timeout_ms` maximum the document states by default (`max_timeout_ms`, 7 days); a
/// daemon's document states its configured value.
pub const DEFAULT_MAX_TIMEOUT_MS: u64 = 604_800_000;
/// The resize maximum the document states by default (`[limits] max_workers_per_pool`).
pub const DEFAULT_MAX_WORKERS_PER_POOL: u32 = 64;
/// A day, in ms.
pub const DAY_MS: i64 = 86_400_000;

/// The latest `run_at` a submit may ask at `now`: 365 days after the start of `now`'s day
/// (UTC). The bound moves once a day, so the document a daemon serves states the bound its
/// submits are held to (one that moved with every millisecond could not be stated).
pub fn latest_run_at(now: i64) -> i64 {
    let today = now.div_euclid(DAY_MS) * DAY_MS;
    today.saturating_add(MAX_DELAY_MS as i64)
}

/// Most jobs in a batch.
pub const MAX_BATCH: usize = 1000;
/// Most jobs in a page, and the default.
pub const MAX_PAGE: u32 = 1000;
/// The default page.
pub const DEFAULT_PAGE: u32 = 50;
/// The latest time a list filter (`since`, `until`) takes, in Unix milliseconds: the last one
/// a job id's 48-bit clock holds (year 10889).
pub const MAX_TIME_MS: i64 = (1 << 48) - 1;
/// The longest long poll, in seconds.
pub const MAX_WAIT_SECS: f64 = 60.0;
/// Longest job name, in bytes.
pub const MAX_JOB_NAME: usize = 1024;
/// Longest schedule name, in characters.
pub const MAX_SCHEDULE_NAME: usize = 128;
