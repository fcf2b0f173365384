//! The guard rails of a schedule: what a due tick does given the schedule's counters (kept by
//! the store, the same on every node), and the validation of the policies (config and API).
//! Pure functions, so the model test (`model.rs`) drives them with a fake clock.

use chrono_tz::Tz;

use crate::engine::error::EngineError;

/// The most `pause_after_failures` accepted (beyond it, "never" is meant: leave it out).
pub(crate) const MAX_PAUSE_AFTER_FAILURES: u32 = 1_000;

/// What a tick does while a run of the schedule is unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overlap {
    /// The tick fires nothing.
    Skip,
    /// The tick fires: runs queue behind each other.
    Queue,
}

/// The policies of a schedule, checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Policy {
    /// See [`Overlap`].
    pub(crate) overlap: Overlap,
    /// Pause after this many consecutive failed runs.
    pub(crate) pause_after_failures: Option<u32>,
    /// The zone its expression is read in.
    pub(crate) tz: Tz,
}

impl Policy {
    /// Checks the policies as given in `[[cron]]` or `POST /v1/cron`.
    ///
    /// # Errors
    ///
    /// [`EngineError::Invalid`] naming the field and the reason.
    pub(crate) fn check(
        overlap: &str,
        pause_after_failures: Option<u32>,
        timezone: Option<&str>,
    ) -> Result<Self, EngineError> {
        let overlap = match overlap {
            "skip" => Overlap::Skip,
            "queue" => Overlap::Queue,
            other => {
                return Err(EngineError::Invalid(format!(
                    "overlap: {other:?} is not \"skip\" or \"queue\""
                )))
            }
        };
        if let Some(n) = pause_after_failures {
            if n == 0 || n > MAX_PAUSE_AFTER_FAILURES {
                return Err(EngineError::Invalid(format!(
                    "pause_after_failures: {n} is not in 1..={MAX_PAUSE_AFTER_FAILURES} \
                     (leave it out to never pause)"
                )));
            }
        }
        let tz = match timezone {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                EngineError::Invalid(format!(
                    "timezone: {name:?} is not an IANA time zone name (e.g. \"Europe/Berlin\")"
                ))
            })?,
        };
        Ok(Self {
            overlap,
            pause_after_failures,
            tz,
        })
    }
}

/// What the scheduler knows of a schedule when one of its ticks is due.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Status {
    /// It is paused.
    pub(crate) paused: bool,
    /// Its runs that failed since the last success (or resume).
    pub(crate) consecutive_failures: u32,
    /// One of its runs is unfinished.
    pub(crate) active: bool,
}

/// What a due tick does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Submit its job.
    Fire,
    /// Nothing: the previous run is unfinished (`overlap = "skip"`).
    SkipOverlap,
    /// Nothing: the schedule is paused.
    Paused,
    /// Pause the schedule now (it reached `pause_after_failures`), fire nothing.
    Pause,
}

/// The decision for a due tick. A pause comes before the overlap: a schedule that keeps
/// failing stops even while a run is unfinished.
pub(crate) fn decide(policy: &Policy, status: Status) -> Decision {
    if status.paused {
        Decision::Paused
    } else if policy
        .pause_after_failures
        .is_some_and(|n| status.consecutive_failures >= n)
    {
        Decision::Pause
    } else if policy.overlap == Overlap::Skip && status.active {
        Decision::SkipOverlap
    } else {
        Decision::Fire
    }
}

/// Whether a schedule that is not paused should pause now (between ticks, so a schedule that
/// reached its limit shows paused before its next tick).
pub(crate) fn should_pause(policy: &Policy, status: Status) -> bool {
    !status.paused
        && policy
            .pause_after_failures
            .is_some_and(|n| status.consecutive_failures >= n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_policies_name_their_field() {
        let message = |e: EngineError| match e {
            EngineError::Invalid(m) => m,
            e => panic!("{e:?}"),
        };
        let m = message(Policy::check("replace", None, None).unwrap_err());
        assert!(m.starts_with("overlap:"), "{m}");
        for n in [0, MAX_PAUSE_AFTER_FAILURES + 1] {
            let m = message(Policy::check("skip", Some(n), None).unwrap_err());
            assert!(m.starts_with("pause_after_failures:"), "{m}");
        }
        let m = message(Policy::check("skip", None, Some("Mars/Olympus")).unwrap_err());
        assert!(m.starts_with("timezone:"), "{m}");
        let p = Policy::check("queue", Some(3), Some("Europe/Berlin")).unwrap();
        assert_eq!(
            (p.overlap, p.pause_after_failures, p.tz),
            (Overlap::Queue, Some(3), chrono_tz::Europe::Berlin)
        );
        assert_eq!(Policy::check("skip", None, None).unwrap().tz, Tz::UTC);
    }
}
