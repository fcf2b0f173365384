//! `[history]`: the per-minute job history behind `GET /v1/stats` and the dashboard's charts
//! (`history.rs`). Its numbers are checked in `numbers.rs`.

use std::time::Duration;

use serde::Deserialize;

/// `[history]` of `offload.toml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HistorySection {
    /// Keep the history of this many days (default 7, 1..=365).
    pub retention_days: Option<u64>,
    /// Add this node's counts to the store every this many ms (default 5,000, 100..=60,000):
    /// what a crash of the daemon may lose of the history (never a job).
    pub flush_ms: Option<u64>,
}

/// The history's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Minutes older than this are purged (default 7 days).
    pub retention_days: u64,
    /// How often this node adds its counts to the store (default 5 s).
    pub flush: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            retention_days: 7,
            flush: Duration::from_secs(5),
        }
    }
}

impl HistoryConfig {
    pub(super) fn apply(&mut self, s: HistorySection) {
        if let Some(d) = s.retention_days {
            self.retention_days = d;
        }
        if let Some(ms) = s.flush_ms {
            self.flush = Duration::from_millis(ms);
        }
    }

    /// The retention in ms.
    pub(crate) fn retention_ms(&self) -> i64 {
        i64::try_from(self.retention_days)
            .unwrap_or(i64::MAX)
            .saturating_mul(24 * 3_600_000)
    }
}
