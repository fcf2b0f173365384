//! Timers that never panic: every duration that reaches a timer (a `DelayQueue` insert, an
//! `Instant + Duration`, a `sleep`) goes through [`clamp`] or [`deadline_in`] first.
//!
//! `tokio_util::time::DelayQueue::insert` panics above 2^36 ms (about 2.2 years) and
//! `Instant + Duration` panics on overflow; a `timeout_ms` from a request must not be able to
//! reach either. Options are validated against [`MAX_DURATION`] where they enter (a typed error
//! naming the field and the limit); whatever still reaches a timer is clamped to [`MAX_TIMER`],
//! which is far enough away to mean "never" for a supervisor.
//!
//! ```
//! use std::time::Duration;
//! use offload_process::timer;
//!
//! assert_eq!(timer::clamp(Duration::from_secs(5)), Duration::from_secs(5));
//! assert_eq!(timer::clamp(Duration::MAX), timer::MAX_TIMER);
//! let _never_panics = timer::deadline_in(Duration::MAX);
//! ```

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// The largest duration a library option may hold (timeouts, graces, intervals, delays):
/// 365 days. Larger values are refused where options enter, with a typed error.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The largest duration any timer is armed with: 730 days, below `DelayQueue`'s limit of
/// 2^36 ms. Longer durations are clamped to it.
pub const MAX_TIMER: Duration = Duration::from_secs(730 * 24 * 3600);

/// `d`, at most [`MAX_TIMER`].
pub fn clamp(d: Duration) -> Duration {
    d.min(MAX_TIMER)
}

/// The instant `d` from now, with `d` clamped; never overflows.
pub fn deadline_in(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(clamp(d)).unwrap_or(now)
}

/// `at + d` with `d` clamped; `at` itself when even that would overflow.
pub fn after(at: Instant, d: Duration) -> Instant {
    at.checked_add(clamp(d)).unwrap_or(at)
}

/// Milliseconds since the Unix epoch, `d` from now (for a worker's deadline); saturates.
pub fn epoch_ms_in(d: Duration) -> u64 {
    let now = SystemTime::now();
    let at = now.checked_add(clamp(d)).unwrap_or(now);
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |e| u64::try_from(e.as_millis()).unwrap_or(u64::MAX))
}

/// Checks an option against [`MAX_DURATION`].
///
/// # Errors
///
/// [`OutOfRange`] naming `field` and the limit.
pub fn check(field: &'static str, d: Duration) -> Result<(), OutOfRange> {
    if d > MAX_DURATION {
        Err(OutOfRange {
            field,
            value: d,
            limit: MAX_DURATION,
        })
    } else {
        Ok(())
    }
}

/// A duration option above its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} is {value:?}, above the maximum of {limit:?}")]
pub struct OutOfRange {
    /// The option.
    pub field: &'static str,
    /// What was given.
    pub value: Duration,
    /// The maximum.
    pub limit: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamp_keeps_small_and_caps_huge() {
        assert_eq!(clamp(Duration::ZERO), Duration::ZERO);
        assert_eq!(clamp(MAX_TIMER), MAX_TIMER);
        assert_eq!(clamp(MAX_TIMER + Duration::from_nanos(1)), MAX_TIMER);
        assert_eq!(clamp(Duration::from_millis(100_000_000_000)), MAX_TIMER);
        assert_eq!(clamp(Duration::MAX), MAX_TIMER);
        // DelayQueue's own limit is 2^36 - 1 ms.
        assert!(MAX_TIMER.as_millis() < (1u128 << 36));
        const { assert!(MAX_DURATION.as_secs() < MAX_TIMER.as_secs()) };
    }

    #[test]
    fn deadlines_never_overflow() {
        let before = Instant::now();
        let at = deadline_in(Duration::MAX);
        assert!(at >= before + MAX_TIMER);
        assert_eq!(after(before, Duration::MAX), before + MAX_TIMER);
        assert!(epoch_ms_in(Duration::MAX) > epoch_ms_in(Duration::ZERO));
        assert!(deadline_in(Duration::from_secs(1)) > before);
    }

    #[test]
    fn checks_name_the_field_and_the_limit() {
        assert!(check("timeout", MAX_DURATION).is_ok());
        let e = check("timeout", Duration::from_millis(100_000_000_000)).unwrap_err();
        assert_eq!(e.field, "timeout");
        let text = e.to_string();
        assert!(text.starts_with("timeout is "), "{text}");
        assert!(text.contains("31536000s"), "{text}");
    }
}
