//! [`ScheduleError`]: why a schedule was refused, naming the field and the reason.

use thiserror::Error;

/// Why a schedule (its expression, interval or policies) was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// A cron expression that does not parse, or fires more often than allowed.
    #[error("{0}")]
    Expr(String),
    /// A cron expression whose ticks come closer than the minimum interval allowed.
    #[error("{expr:?} fires every {every_ms} ms, more often than {setting} = {min_ms}")]
    TooOften {
        /// The expression.
        expr: String,
        /// The shortest gap between two of its ticks.
        every_ms: i64,
        /// The minimum allowed.
        min_ms: i64,
        /// The setting that holds the minimum (named so the user can find it).
        setting: &'static str,
    },
    /// A policy or an interval out of range: `field: reason`.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field (`overlap`, `pause_after_failures`, `timezone`, `jitter`, …).
        field: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
}

impl ScheduleError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
