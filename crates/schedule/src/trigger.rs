//! [`Trigger`]: when a schedule's ticks are — every fixed interval from its start, or a cron
//! expression read in the policy's time zone.

use std::time::Duration;

use chrono_tz::Tz;
use croner::Cron;
use offload_process::timer::MAX_DURATION;

use crate::error::ScheduleError;
use crate::{expr, Millis};

/// When a schedule's ticks are.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// Every `interval`, counted from the scheduler's start (the first tick one interval
    /// after it, or at once with [`ScheduleSpec::immediately`](crate::ScheduleSpec::immediately)).
    Every(Duration),
    /// A cron expression (5 or 6 fields, croner's syntax), read in the policy's time zone.
    Cron(Box<Cron>),
}

impl Trigger {
    /// Every `interval`.
    ///
    /// # Errors
    ///
    /// [`ScheduleError::Invalid`] (`interval`) below 1 ms or above a year.
    pub fn every(interval: Duration) -> Result<Self, ScheduleError> {
        if interval < Duration::from_millis(1) || interval > MAX_DURATION {
            return Err(ScheduleError::invalid(
                "interval",
                format!(
                    "{interval:?} is not within 1 ms ..= {} s",
                    MAX_DURATION.as_secs()
                ),
            ));
        }
        Ok(Self::Every(interval))
    }

    /// A cron expression.
    ///
    /// # Errors
    ///
    /// [`ScheduleError::Expr`] when it does not parse.
    pub fn cron(expression: &str) -> Result<Self, ScheduleError> {
        Ok(Self::Cron(Box::new(expr::parse(expression)?)))
    }

    /// The first tick strictly after `after`, for a schedule started at `anchor`.
    pub fn next_after(&self, tz: Tz, anchor: Millis, after: Millis) -> Option<Millis> {
        match self {
            Self::Every(interval) => {
                let step = i64::try_from(interval.as_millis()).ok()?.max(1);
                let k = if after < anchor {
                    0
                } else {
                    (after - anchor) / step + 1
                };
                anchor.checked_add(k.checked_mul(step)?)
            }
            Self::Cron(cron) => expr::next_after(cron, tz, after),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_counts_from_its_anchor() {
        let t = Trigger::every(Duration::from_millis(100)).unwrap();
        assert_eq!(t.next_after(Tz::UTC, 1000, 1000), Some(1100));
        assert_eq!(t.next_after(Tz::UTC, 1000, 1099), Some(1100));
        assert_eq!(t.next_after(Tz::UTC, 1000, 1100), Some(1200));
        assert_eq!(t.next_after(Tz::UTC, 1000, 5), Some(1000));
        assert!(Trigger::every(Duration::ZERO).is_err());
        assert!(Trigger::every(MAX_DURATION * 2).is_err());
    }

    #[test]
    fn a_cron_trigger_uses_the_zone() {
        let t = Trigger::cron("0 3 * * *").unwrap();
        // 2026-01-10T00:00Z; 03:00 in Berlin is 02:00Z in winter.
        let from = 1_768_003_200_000;
        assert_eq!(
            t.next_after(chrono_tz::Europe::Berlin, 0, from),
            Some(from + 2 * 3_600_000)
        );
        assert!(Trigger::cron("every day").is_err());
    }
}
