//! `[limits]`: admission control (`admission.rs`, cron, resize).

use std::time::Duration;

use serde::Deserialize;

/// `[limits]` of `offload.toml`: admission control (see [`Limits`] for the defaults).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Waiting jobs (scheduled, queued, or waiting for a retry) of one pool, at most.
    pub max_queued_per_pool: Option<u64>,
    /// Waiting jobs of all pools, at most.
    pub max_queued_total: Option<u64>,
    /// Cron schedules (config and API), at most.
    pub max_cron_schedules: Option<usize>,
    /// The shortest time between two ticks of a cron schedule.
    pub min_cron_interval_ms: Option<u64>,
    /// Workers of one pool, at most (`[[pool]] max`, `POST /v1/pools/{name}/resize`).
    pub max_workers_per_pool: Option<usize>,
    /// Bytes of stdout/stderr lines kept per attempt of a job; the rest is counted, not kept.
    pub max_log_bytes_per_attempt: Option<usize>,
    /// The attempts of a job whose logs a manual retry keeps (its last ones).
    pub max_log_attempts_per_job: Option<u32>,
}

/// Admission control: how much work the daemon accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Waiting jobs of one pool (default 100,000); a submit over it: 429 `queue_full`.
    pub max_queued_per_pool: u64,
    /// Waiting jobs of all pools (default 1,000,000); a submit over it: 429 `queue_full`.
    pub max_queued_total: u64,
    /// Cron schedules (default 1,000).
    pub max_cron_schedules: usize,
    /// The shortest time between two ticks of a schedule (default 60 s: a 6-field expression
    /// that fires every second needs `min_cron_interval_ms = 1000`).
    pub min_cron_interval: Duration,
    /// Workers of one pool (default 64).
    pub max_workers_per_pool: usize,
    /// Bytes of stdout/stderr lines kept per attempt of a job (default 64 KiB, at most
    /// 16 MiB); over it, lines are dropped and a final marker line
    /// says how many.
    pub max_log_bytes_per_attempt: usize,
    /// The attempts of a job whose logs a manual retry keeps: its last ones (default 10,
    /// 1..=1000); the retry deletes the older attempts' logs. The attempts between two retries
    /// (at most the job's `max_attempts`) all keep theirs.
    pub max_log_attempts_per_job: u32,
}

/// The largest `max_log_bytes_per_attempt` (16 MiB).
pub(crate) const MAX_LOG_BYTES_PER_ATTEMPT: usize = 16 << 20;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_queued_per_pool: 100_000,
            max_queued_total: 1_000_000,
            max_cron_schedules: 1_000,
            min_cron_interval: Duration::from_secs(60),
            max_workers_per_pool: 64,
            max_log_bytes_per_attempt: 64 * 1024,
            max_log_attempts_per_job: offload_store::logs::DEFAULT_LOG_ATTEMPTS,
        }
    }
}

impl Limits {
    pub(super) fn apply(&mut self, s: LimitsSection) {
        if let Some(n) = s.max_queued_per_pool {
            self.max_queued_per_pool = n;
        }
        if let Some(n) = s.max_queued_total {
            self.max_queued_total = n;
        }
        if let Some(n) = s.max_cron_schedules {
            self.max_cron_schedules = n;
        }
        if let Some(ms) = s.min_cron_interval_ms {
            self.min_cron_interval = Duration::from_millis(ms);
        }
        if let Some(n) = s.max_workers_per_pool {
            self.max_workers_per_pool = n.max(1);
        }
        if let Some(n) = s.max_log_bytes_per_attempt {
            self.max_log_bytes_per_attempt = n;
        }
        if let Some(n) = s.max_log_attempts_per_job {
            self.max_log_attempts_per_job = n;
        }
    }
}
