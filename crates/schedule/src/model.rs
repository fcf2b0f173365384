//! Model-based property test of the scheduler's decisions ([`decide`], [`should_pause`]): a
//! fake clock ticks once per step, each fired run lasts a generated number of steps and ends
//! with a generated outcome; the simulation (the scheduler's order: runs that end are counted,
//! then the between-ticks pause check, then the tick) is compared with a plain model of each
//! policy.

use proptest::prelude::*;

use crate::policy::{decide, should_pause, Decision, Overlap, Policy, Status};

/// One run: how many steps it lasts (≥ 1) and whether it succeeds.
type Run = (u32, bool);

/// What happened: the steps whose tick fired, and the step at which the schedule paused.
#[derive(Debug, PartialEq)]
struct Trace {
    fired: Vec<u32>,
    paused_at: Option<u32>,
}

/// Drives the decisions over `steps` ticks; the n-th fired run behaves as `runs[n]`.
fn simulate(policy: &Policy, runs: &[Run], steps: u32) -> Trace {
    let mut status = Status::default();
    // (end step, fire order, ok) of unfinished runs.
    let mut running: Vec<(u32, usize, bool)> = Vec::new();
    let mut trace = Trace {
        fired: Vec::new(),
        paused_at: None,
    };
    for t in 0..steps {
        running.sort_unstable();
        while running.first().is_some_and(|r| r.0 <= t) {
            let (_, _, ok) = running.remove(0);
            status.consecutive_failures = if ok {
                0
            } else {
                status.consecutive_failures + 1
            };
        }
        status.active = !running.is_empty();
        if should_pause(policy, status) {
            status.paused = true;
            trace.paused_at = Some(t);
        }
        match decide(policy, status, i64::from(t)) {
            Decision::Fire => {
                let n = trace.fired.len();
                let (len, ok) = runs[n % runs.len()];
                running.push((t + len, n, ok));
                trace.fired.push(t);
            }
            Decision::Pause => {
                status.paused = true;
                trace.paused_at = Some(t);
            }
            Decision::SkipOverlap | Decision::SkipBackoff | Decision::Paused => {}
            Decision::Replace => unreachable!("the model runs skip and queue"),
        }
    }
    trace
}

/// The model of `overlap = "skip"`: one run at a time, the next at the step its predecessor
/// ends; the schedule pauses when the run that makes `n` consecutive failures ends.
fn model_skip(pause_after: Option<u32>, runs: &[Run], steps: u32) -> Trace {
    let (mut t, mut failures, mut n) = (0, 0, 0);
    let mut fired = Vec::new();
    while t < steps {
        fired.push(t);
        let (len, ok) = runs[n % runs.len()];
        n += 1;
        t += len;
        failures = if ok { 0 } else { failures + 1 };
        if pause_after.is_some_and(|p| failures >= p) {
            let paused_at = (t < steps).then_some(t);
            return Trace { fired, paused_at };
        }
    }
    Trace {
        fired,
        paused_at: None,
    }
}

fn policy(overlap: Overlap, pause_after_failures: Option<u32>) -> Policy {
    Policy {
        overlap,
        pause_after_failures,
        ..Policy::default()
    }
}

fn runs() -> impl Strategy<Value = Vec<Run>> {
    prop::collection::vec((1u32..5, prop::bool::weighted(0.6)), 1..20)
}

proptest! {
    #[test]
    fn skip_matches_its_model(
        runs in runs(),
        pause in prop::option::of(1u32..5),
        steps in 1u32..80,
    ) {
        let got = simulate(&policy(Overlap::Skip, pause), &runs, steps);
        prop_assert_eq!(got, model_skip(pause, &runs, steps));
    }

    /// `queue`: every tick fires until the pause, none after; the pause comes at the first
    /// step that ends with the failures counted so far at the limit.
    #[test]
    fn queue_fires_every_tick_until_it_pauses(
        runs in runs(),
        pause in prop::option::of(1u32..5),
        steps in 1u32..80,
    ) {
        let got = simulate(&policy(Overlap::Queue, pause), &runs, steps);
        let until = got.paused_at.unwrap_or(steps);
        prop_assert_eq!(&got.fired, &(0..until).collect::<Vec<_>>());
        // The model of the failures: run i fires at step i and ends at i + len, counted in end
        // order (then fire order).
        let mut ends: Vec<(u32, u32, bool)> = got
            .fired
            .iter()
            .map(|&i| {
                let (len, ok) = runs[i as usize % runs.len()];
                (i + len, i, ok)
            })
            .collect();
        ends.sort_unstable();
        // The scheduler looks at the count between steps: a success in the same step as a
        // failure, counted after it, resets it before the look.
        let mut failures = 0;
        let mut expected = None;
        for (k, &(end, _, ok)) in ends.iter().enumerate() {
            if end >= steps {
                break;
            }
            failures = if ok { 0 } else { failures + 1 };
            let last_of_step = ends.get(k + 1).is_none_or(|next| next.0 != end);
            if last_of_step && pause.is_some_and(|p| failures >= p) {
                expected = Some(end);
                break;
            }
        }
        prop_assert_eq!(got.paused_at, expected);
        if pause.is_none() {
            prop_assert_eq!(got.fired.len() as u32, steps);
        }
    }
}
