//! The guard rails of a schedule: what a due tick does given the schedule's status (its
//! counters, its pause, whether a run is unfinished, when it last failed), and the validation
//! of the policies. Pure functions: the daemon's cron scheduler, the library's [`Scheduler`](crate::Scheduler)
//! and the model test (`model.rs`) all drive the same ones.

use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;
use rand::Rng;

use crate::error::ScheduleError;
use crate::Millis;

/// The most `pause_after_failures` accepted (beyond it, "never" is meant: leave it out).
pub const MAX_PAUSE_AFTER_FAILURES: u32 = 1_000;

/// The largest jitter (a random delay added to each run): one hour.
pub const MAX_JITTER: Duration = Duration::from_secs(3600);

/// The longest wait after failures ([`FailureBackoff`]): one day.
pub const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(24 * 3600);

/// What a tick does while a run of the schedule is unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlap {
    /// The tick fires nothing (the default).
    #[default]
    Skip,
    /// The tick fires: runs queue behind each other.
    Queue,
    /// The unfinished run is cancelled, then the tick fires.
    Replace,
}

impl Overlap {
    /// Its name in configuration and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Queue => "queue",
            Self::Replace => "replace",
        }
    }
}

impl FromStr for Overlap {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "skip" => Ok(Self::Skip),
            "queue" => Ok(Self::Queue),
            "replace" => Ok(Self::Replace),
            other => Err(ScheduleError::invalid(
                "overlap",
                format!("{other:?} is not \"skip\", \"queue\" or \"replace\""),
            )),
        }
    }
}

/// After a failed run, wait before the next: `base` after the first failure, doubling with
/// each consecutive failure, at most `max`. Ticks that fall in the wait fire nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureBackoff {
    /// The wait after one failure.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl FailureBackoff {
    /// Checks `base` and `max`.
    ///
    /// # Errors
    ///
    /// [`ScheduleError::Invalid`] (`failure_backoff`): zero, above [`MAX_FAILURE_BACKOFF`],
    /// or `max` below `base`.
    pub fn new(base: Duration, max: Duration) -> Result<Self, ScheduleError> {
        let limit = MAX_FAILURE_BACKOFF.as_secs();
        if base.is_zero() || base > MAX_FAILURE_BACKOFF || max > MAX_FAILURE_BACKOFF {
            return Err(ScheduleError::invalid(
                "failure_backoff",
                format!("{base:?} .. {max:?} is not within 1 ms ..= {limit} s"),
            ));
        }
        if max < base {
            return Err(ScheduleError::invalid(
                "failure_backoff",
                format!("the maximum {max:?} is below the base {base:?}"),
            ));
        }
        Ok(Self { base, max })
    }

    /// The wait after `failures` consecutive failures (none after none).
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let doublings = (failures - 1).min(32);
        self.base
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// The policies of a schedule, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// See [`Overlap`].
    pub overlap: Overlap,
    /// Pause after this many consecutive failed runs.
    pub pause_after_failures: Option<u32>,
    /// The zone its expression is read in.
    pub tz: Tz,
    /// Each run starts up to this much after its tick (uniformly at random), so that many
    /// schedules on the same minute do not start at once.
    pub jitter: Duration,
    /// The wait after failures, if any.
    pub failure_backoff: Option<FailureBackoff>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            overlap: Overlap::Skip,
            pause_after_failures: None,
            tz: Tz::UTC,
            jitter: Duration::ZERO,
            failure_backoff: None,
        }
    }
}

impl Policy {
    /// Checks the policies as given in `[[cron]]` or `POST /v1/cron`.
    ///
    /// # Errors
    ///
    /// [`ScheduleError::Invalid`] naming the field and the reason.
    pub fn check(
        overlap: &str,
        pause_after_failures: Option<u32>,
        timezone: Option<&str>,
    ) -> Result<Self, ScheduleError> {
        Ok(Self {
            overlap: overlap.parse()?,
            pause_after_failures: check_pause_after(pause_after_failures)?,
            tz: timezone.map_or(Ok(Tz::UTC), zone)?,
            ..Self::default()
        })
    }

    /// With `jitter`.
    ///
    /// # Errors
    ///
    /// [`ScheduleError::Invalid`] (`jitter`) above [`MAX_JITTER`].
    pub fn with_jitter(mut self, jitter: Duration) -> Result<Self, ScheduleError> {
        if jitter > MAX_JITTER {
            return Err(ScheduleError::invalid(
                "jitter",
                format!("{jitter:?} is above {} s", MAX_JITTER.as_secs()),
            ));
        }
        self.jitter = jitter;
        Ok(self)
    }

    /// A random delay in `0..=jitter` for one run.
    pub fn jitter_delay(&self, rng: &mut impl Rng) -> Duration {
        if self.jitter.is_zero() {
            return Duration::ZERO;
        }
        let ms = u64::try_from(self.jitter.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.random_range(0..=ms))
    }
}

/// `n` checked against `1..=`[`MAX_PAUSE_AFTER_FAILURES`].
fn check_pause_after(n: Option<u32>) -> Result<Option<u32>, ScheduleError> {
    match n {
        Some(n) if n == 0 || n > MAX_PAUSE_AFTER_FAILURES => Err(ScheduleError::invalid(
            "pause_after_failures",
            format!("{n} is not in 1..={MAX_PAUSE_AFTER_FAILURES} (leave it out to never pause)"),
        )),
        n => Ok(n),
    }
}

/// An IANA time zone by name.
///
/// # Errors
///
/// [`ScheduleError::Invalid`] (`timezone`) for a name chrono-tz does not know.
pub fn zone(name: &str) -> Result<Tz, ScheduleError> {
    name.parse::<Tz>().map_err(|_| {
        ScheduleError::invalid(
            "timezone",
            format!("{name:?} is not an IANA time zone name (e.g. \"Europe/Berlin\")"),
        )
    })
}

/// What the scheduler knows of a schedule when one of its ticks is due.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    /// It is paused.
    pub paused: bool,
    /// Its runs that failed since the last success (or resume).
    pub consecutive_failures: u32,
    /// One of its runs is unfinished.
    pub active: bool,
    /// When a run last failed.
    pub last_failure_at: Option<Millis>,
}

/// What a due tick does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start its job.
    Fire,
    /// Cancel the unfinished run, then start its job (`overlap = "replace"`).
    Replace,
    /// Nothing: the previous run is unfinished (`overlap = "skip"`).
    SkipOverlap,
    /// Nothing: the wait after the last failure is not over ([`FailureBackoff`]).
    SkipBackoff,
    /// Nothing: the schedule is paused.
    Paused,
    /// Pause the schedule now (it reached `pause_after_failures`), fire nothing.
    Pause,
}

/// The decision for a tick due at `now`. A pause comes before everything else: a schedule
/// that keeps failing stops even while a run is unfinished; the backoff comes before the
/// overlap.
pub fn decide(policy: &Policy, status: Status, now: Millis) -> Decision {
    if status.paused {
        Decision::Paused
    } else if should_pause(policy, status) {
        Decision::Pause
    } else if backoff_until(policy, status).is_some_and(|until| now < until) {
        Decision::SkipBackoff
    } else if status.active {
        match policy.overlap {
            Overlap::Skip => Decision::SkipOverlap,
            Overlap::Queue => Decision::Fire,
            Overlap::Replace => Decision::Replace,
        }
    } else {
        Decision::Fire
    }
}

/// Whether a schedule that is not paused should pause now (between ticks, so a schedule that
/// reached its limit shows paused before its next tick).
pub fn should_pause(policy: &Policy, status: Status) -> bool {
    !status.paused
        && policy
            .pause_after_failures
            .is_some_and(|n| status.consecutive_failures >= n)
}

/// Until when ticks fire nothing after the last failure (`None`: no wait).
pub fn backoff_until(policy: &Policy, status: Status) -> Option<Millis> {
    let backoff = policy.failure_backoff?;
    let at = status.last_failure_at?;
    let wait = backoff.delay(status.consecutive_failures);
    (!wait.is_zero())
        .then(|| at.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_policies_name_their_field() {
        let field = |e: ScheduleError| match e {
            ScheduleError::Invalid { field, .. } => field,
            e => panic!("{e:?}"),
        };
        assert_eq!(
            field(Policy::check("sometimes", None, None).unwrap_err()),
            "overlap"
        );
        for n in [0, MAX_PAUSE_AFTER_FAILURES + 1] {
            let e = Policy::check("skip", Some(n), None).unwrap_err();
            assert!(e.to_string().starts_with("pause_after_failures: "), "{e}");
        }
        assert_eq!(
            field(Policy::check("skip", None, Some("Mars/Olympus")).unwrap_err()),
            "timezone"
        );
        let p = Policy::check("queue", Some(3), Some("Europe/Berlin")).unwrap();
        assert_eq!(
            (p.overlap, p.pause_after_failures, p.tz),
            (Overlap::Queue, Some(3), chrono_tz::Europe::Berlin)
        );
        assert_eq!(
            Policy::check("replace", None, None).unwrap().overlap,
            Overlap::Replace
        );
        assert_eq!(Policy::check("skip", None, None).unwrap().tz, Tz::UTC);
        let e = Policy::default().with_jitter(MAX_JITTER + Duration::from_millis(1));
        assert_eq!(field(e.unwrap_err()), "jitter");
        let s = Duration::from_secs(1);
        assert_eq!(
            field(FailureBackoff::new(Duration::ZERO, s).unwrap_err()),
            "failure_backoff"
        );
        assert_eq!(
            field(FailureBackoff::new(s * 2, s).unwrap_err()),
            "failure_backoff"
        );
        assert_eq!(
            field(FailureBackoff::new(s, MAX_FAILURE_BACKOFF * 2).unwrap_err()),
            "failure_backoff"
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_maximum() {
        let b = FailureBackoff::new(Duration::from_secs(1), Duration::from_secs(10)).unwrap();
        let waits: Vec<u64> = (0..7).map(|k| b.delay(k).as_secs()).collect();
        assert_eq!(waits, [0, 1, 2, 4, 8, 10, 10]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_within_its_bound() {
        let p = Policy::default()
            .with_jitter(Duration::from_millis(50))
            .unwrap();
        let mut rng = rand::rng();
        for _ in 0..1000 {
            assert!(p.jitter_delay(&mut rng) <= Duration::from_millis(50));
        }
        assert_eq!(Policy::default().jitter_delay(&mut rng), Duration::ZERO);
    }

    #[test]
    fn the_order_of_the_decisions() {
        let backoff = FailureBackoff::new(Duration::from_millis(100), Duration::from_secs(1)).ok();
        let policy = |overlap, pause_after_failures| Policy {
            overlap,
            pause_after_failures,
            failure_backoff: backoff,
            ..Policy::default()
        };
        let status = |paused, consecutive_failures, active, last_failure_at| Status {
            paused,
            consecutive_failures,
            active,
            last_failure_at,
        };
        let p = policy(Overlap::Skip, Some(2));
        assert_eq!(
            decide(&p, status(true, 0, false, None), 0),
            Decision::Paused
        );
        assert_eq!(
            decide(&p, status(false, 2, true, Some(0)), 0),
            Decision::Pause
        );
        // One failure at 1000: ticks wait until 1100.
        assert_eq!(
            decide(&p, status(false, 1, false, Some(1000)), 1050),
            Decision::SkipBackoff
        );
        assert_eq!(
            decide(&p, status(false, 1, true, Some(1000)), 1100),
            Decision::SkipOverlap
        );
        assert_eq!(
            decide(&p, status(false, 1, false, Some(1000)), 1100),
            Decision::Fire
        );
        assert_eq!(
            decide(&p, status(false, 0, true, None), 0),
            Decision::SkipOverlap
        );
        let q = policy(Overlap::Queue, None);
        assert_eq!(
            decide(&q, status(false, 99, true, Some(0)), i64::MAX),
            Decision::Fire
        );
        let r = policy(Overlap::Replace, None);
        assert_eq!(
            decide(&r, status(false, 0, true, None), 0),
            Decision::Replace
        );
        assert_eq!(decide(&r, status(false, 0, false, None), 0), Decision::Fire);
    }
}
