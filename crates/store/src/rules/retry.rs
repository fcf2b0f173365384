//! When a failed attempt runs again: the job's [`Backoff`] (a curve, a maximum delay, optional
//! full jitter), decided by one pure function, [`delay_ms`], that both the daemon and the tests
//! call. A job that carries no backoff retries as every job did before backoffs could be chosen:
//! `backoff_ms · 2^(attempt-1)`, at most one hour, no jitter ([`Backoff::legacy`]).

use serde::{Deserialize, Serialize};

use crate::limits::{human_ms, LimitError, MAX_BACKOFF_MS};
use crate::Millis;

/// Most entries of a [`Curve::List`].
pub const MAX_BACKOFF_LIST: usize = 32;

/// The shape of the delays, by attempt `n` (1-based: the attempt that just failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Curve {
    /// Always `d`.
    Fixed(u64),
    /// `d · n`.
    Linear(u64),
    /// `d · 2^(n-1)`.
    Exponential(u64),
    /// The `n`th entry; past the end, the last one.
    List(Vec<u64>),
}

/// How long a failed job waits before its next attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    /// The delays.
    pub curve: Curve,
    /// No delay is longer (at most [`MAX_BACKOFF_MS`], one hour, whatever this says).
    pub max_delay_ms: u64,
    /// Full jitter: the delay is drawn uniformly from `0..=` the curve's (capped) delay, so
    /// jobs that failed together do not retry together.
    pub jitter: bool,
}

impl Backoff {
    /// The backoff of a job that names none: `backoff_ms · 2^(attempt-1)`, at most one hour,
    /// no jitter.
    pub fn legacy(backoff_ms: u64) -> Self {
        Self {
            curve: Curve::Exponential(backoff_ms),
            max_delay_ms: MAX_BACKOFF_MS,
            jitter: false,
        }
    }

    /// The curve's first delay: what a job's `backoff_ms` shows.
    pub fn base_ms(&self) -> u64 {
        match &self.curve {
            Curve::Fixed(d) | Curve::Linear(d) | Curve::Exponential(d) => *d,
            Curve::List(ds) => ds.first().copied().unwrap_or(0),
        }
    }

    /// Checks the bounds: every delay and the maximum within `0..=`[`MAX_BACKOFF_MS`], a list
    /// of `1..=`[`MAX_BACKOFF_LIST`] entries.
    ///
    /// # Errors
    ///
    /// A [`LimitError`] naming the field (`backoff.delay_ms`, `backoff.delays_ms` with the
    /// entry's index, `backoff.max_delay_ms`) and its range.
    pub fn check(&self) -> Result<(), LimitError> {
        let range = format!("0..={MAX_BACKOFF_MS} ({})", human_ms(MAX_BACKOFF_MS));
        let field = |name: &'static str, v: u64| {
            if v > MAX_BACKOFF_MS {
                Err(LimitError::new(name, v, range.clone()))
            } else {
                Ok(())
            }
        };
        match &self.curve {
            Curve::Fixed(d) | Curve::Linear(d) | Curve::Exponential(d) => {
                field("backoff.delay_ms", *d)?;
            }
            Curve::List(ds) => {
                if ds.is_empty() || ds.len() > MAX_BACKOFF_LIST {
                    return Err(LimitError::new(
                        "backoff.delays_ms",
                        format!("{} entries", ds.len()),
                        format!("1..={MAX_BACKOFF_LIST} entries"),
                    ));
                }
                if let Some((i, d)) = ds.iter().enumerate().find(|(_, d)| **d > MAX_BACKOFF_MS) {
                    return Err(LimitError::new(
                        "backoff.delays_ms",
                        format!("{d} (entry {i})"),
                        format!("each entry {range}"),
                    ));
                }
            }
        }
        field("backoff.max_delay_ms", self.max_delay_ms)
    }
}

/// The delay after failed attempt `attempt` (1-based; 0 counts as 1): the curve's value, capped
/// by `max_delay_ms` and one hour, then with jitter `random % (capped + 1)` (uniform when
/// `random` is). Never overflows.
pub fn delay_ms(b: &Backoff, attempt: u32, random: u64) -> u64 {
    let n = attempt.max(1);
    let raw = match &b.curve {
        Curve::Fixed(d) => *d,
        Curve::Linear(d) => d.saturating_mul(u64::from(n)),
        Curve::Exponential(d) => d.saturating_mul(2u64.saturating_pow(n - 1)),
        Curve::List(ds) => ds.get(n as usize - 1).or(ds.last()).copied().unwrap_or(0),
    };
    let capped = raw.min(b.max_delay_ms).min(MAX_BACKOFF_MS);
    if b.jitter {
        random % (capped + 1)
    } else {
        capped
    }
}

/// When the job runs again: `now` plus [`delay_ms`].
pub fn retry_at(now: Millis, b: &Backoff, attempt: u32, random: u64) -> Millis {
    let delay = delay_ms(b, attempt, random);
    now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b(curve: Curve, max_delay_ms: u64, jitter: bool) -> Backoff {
        Backoff {
            curve,
            max_delay_ms,
            jitter,
        }
    }

    #[test]
    fn curves_by_attempt() {
        let hour = MAX_BACKOFF_MS;
        // (backoff, attempt, delay)
        let table = [
            (b(Curve::Fixed(500), hour, false), 1, 500),
            (b(Curve::Fixed(500), hour, false), 9, 500),
            (b(Curve::Linear(500), hour, false), 1, 500),
            (b(Curve::Linear(500), hour, false), 3, 1500),
            (b(Curve::Exponential(500), hour, false), 0, 500),
            (b(Curve::Exponential(500), hour, false), 1, 500),
            (b(Curve::Exponential(500), hour, false), 4, 4000),
            (b(Curve::Exponential(500), 3000, false), 4, 3000),
            (
                b(Curve::Exponential(u64::MAX), u64::MAX, false),
                u32::MAX,
                hour,
            ),
            (b(Curve::Linear(u64::MAX), u64::MAX, false), u32::MAX, hour),
            (
                b(Curve::List(vec![1000, 5000, 30_000]), hour, false),
                1,
                1000,
            ),
            (
                b(Curve::List(vec![1000, 5000, 30_000]), hour, false),
                3,
                30_000,
            ),
            (
                b(Curve::List(vec![1000, 5000, 30_000]), hour, false),
                4,
                30_000,
            ),
            (
                b(Curve::List(vec![1000, 5000, 30_000]), hour, false),
                99,
                30_000,
            ),
            (
                b(Curve::List(vec![1000, 5000, 30_000]), 2000, false),
                2,
                2000,
            ),
            (b(Curve::List(vec![]), hour, false), 1, 0),
            (Backoff::legacy(1000), 1, 1000),
            (Backoff::legacy(1000), 3, 4000),
            (Backoff::legacy(1000), 40, hour),
        ];
        for (backoff, attempt, want) in table {
            assert_eq!(
                delay_ms(&backoff, attempt, 0),
                want,
                "{backoff:?} #{attempt}"
            );
        }
        assert_eq!(retry_at(1000, &Backoff::legacy(100), 3, 0), 1400);
        assert_eq!(retry_at(i64::MAX, &Backoff::legacy(100), 3, 0), i64::MAX);
    }

    #[test]
    fn jitter_is_full_and_exact_at_its_ends() {
        let e = b(Curve::Exponential(1000), MAX_BACKOFF_MS, true);
        assert_eq!(delay_ms(&e, 2, 0), 0);
        assert_eq!(delay_ms(&e, 2, 2000), 2000);
        assert_eq!(delay_ms(&e, 2, 2001), 0);
        assert_eq!(delay_ms(&b(Curve::Fixed(0), 0, true), 1, u64::MAX), 0);
    }

    #[test]
    fn checks_name_the_field_and_its_range() {
        let hour = MAX_BACKOFF_MS;
        let bad = [
            (b(Curve::Fixed(hour + 1), hour, false), "backoff.delay_ms"),
            (b(Curve::List(vec![]), hour, false), "backoff.delays_ms"),
            (
                b(Curve::List(vec![0; MAX_BACKOFF_LIST + 1]), hour, false),
                "backoff.delays_ms",
            ),
            (
                b(Curve::List(vec![1, hour + 1]), hour, false),
                "backoff.delays_ms",
            ),
            (b(Curve::Linear(1), hour + 1, false), "backoff.max_delay_ms"),
        ];
        for (backoff, field) in bad {
            let e = backoff.check().unwrap_err();
            assert_eq!(e.field, field, "{backoff:?}");
        }
        let e = b(Curve::List(vec![1, hour + 1]), hour, false)
            .check()
            .unwrap_err();
        assert_eq!(e.value, format!("{} (entry 1)", hour + 1));
        assert!(b(Curve::List(vec![hour; MAX_BACKOFF_LIST]), hour, true)
            .check()
            .is_ok());
        assert!(Backoff::legacy(hour).check().is_ok());
    }

    fn curve() -> impl Strategy<Value = Curve> {
        prop_oneof![
            any::<u64>().prop_map(Curve::Fixed),
            any::<u64>().prop_map(Curve::Linear),
            any::<u64>().prop_map(Curve::Exponential),
            proptest::collection::vec(any::<u64>(), 1..=MAX_BACKOFF_LIST).prop_map(Curve::List),
        ]
    }

    proptest! {
        #[test]
        fn delays_respect_the_maximum_and_jitter_stays_below_the_curve(
            c in curve(),
            max in any::<u64>(),
            attempt in any::<u32>(),
            random in any::<u64>(),
        ) {
            let plain = b(c.clone(), max, false);
            let capped = delay_ms(&plain, attempt, random);
            prop_assert!(capped <= max.min(MAX_BACKOFF_MS));
            let jittered = delay_ms(&b(c, max, true), attempt, random);
            prop_assert!(jittered <= capped);
        }

        #[test]
        fn a_list_clamps_to_its_last_entry(
            ds in proptest::collection::vec(0..=MAX_BACKOFF_MS, 1..=MAX_BACKOFF_LIST),
            past in 0u32..1000,
        ) {
            let last = *ds.last().unwrap();
            let list = b(Curve::List(ds.clone()), MAX_BACKOFF_MS, false);
            prop_assert_eq!(delay_ms(&list, ds.len() as u32 + past, 0), last);
        }

        #[test]
        fn curves_never_shrink_with_attempts(d in 0..=MAX_BACKOFF_MS, n in 1u32..200) {
            for c in [Curve::Linear(d), Curve::Exponential(d)] {
                let x = b(c, MAX_BACKOFF_MS, false);
                prop_assert!(delay_ms(&x, n, 0) <= delay_ms(&x, n + 1, 0));
            }
        }
    }
}
