//! `weightsPolling`: smooth weighted round robin, exactly nginx's.
//!
//! Rule, per pick: every eligible target adds its weight to its current weight
//! (`c_i += w_i`); the target with the largest `c_i` wins (the first in list order on a tie)
//! and gives back the sum of the eligible weights (`c_best -= Σ w`).
//!
//! With integer weights and an unchanged eligible set, the sequence is periodic with period
//! `W = Σ w`: every window of `W` consecutive picks holds each target exactly `w_i` times, and
//! the picks of a heavy target are spread out (`{a: 5, b: 1, c: 1}` gives `a a b a c a a`, not
//! `a a a a a b c`). Real weights keep the long-run proportions.
//!
//! Zero-weight targets are backups (used only when no eligible target has a positive weight, then
//! as weight 1). Adding, removing or reweighting a target restarts the rotation: all `c_i`
//! reset to 0, and the windows count from there. O(n) per pick, as in nginx.

use rand::RngCore;

use super::{Change, Strategy};
use crate::set::{Request, TargetSet};

#[derive(Debug, Default)]
pub(crate) struct SmoothWeighted {
    /// Current weight per target, by index.
    current: Vec<f64>,
    /// Whether every target has a positive weight (then no backups to set aside: one pass).
    all_positive: bool,
    /// Scratch: eligible indices of this pick, when some weights are zero.
    eligible: Vec<usize>,
}

impl SmoothWeighted {
    /// One nginx round over `candidates`, each with weight `weight(i)`; skips weights <= 0.
    #[inline]
    fn round(
        current: &mut [f64],
        candidates: impl Iterator<Item = usize>,
        weight: impl Fn(usize) -> f64,
    ) -> Option<usize> {
        let mut best = None;
        let mut best_c = f64::NEG_INFINITY;
        let mut total = 0.0;
        for i in candidates {
            let w = weight(i);
            if w <= 0.0 {
                continue; // a backup while a weighted target is eligible
            }
            let c = current[i] + w;
            current[i] = c;
            total += w;
            if c > best_c {
                // Strictly greater: the first in list order wins a tie, as in nginx.
                best = Some(i);
                best_c = c;
            }
        }
        let b = best?;
        current[b] -= total;
        Some(b)
    }
}

impl Strategy for SmoothWeighted {
    fn pick(
        &mut self,
        set: &TargetSet,
        req: &Request<'_>,
        _rng: &mut dyn RngCore,
    ) -> Option<usize> {
        let n = set.len();
        if self.current.len() != n {
            self.current.clear();
            self.current.resize(n, 0.0);
            self.all_positive = set.entries().iter().all(|e| e.weight() > 0.0);
        }
        if self.all_positive {
            let eligible = (0..n).filter(|&i| req.eligible(set, i));
            return Self::round(&mut self.current, eligible, |i| set.entry(i).weight());
        }
        self.eligible.clear();
        let mut positive = false;
        for i in 0..n {
            if req.eligible(set, i) {
                positive |= set.entry(i).weight() > 0.0;
                self.eligible.push(i);
            }
        }
        let weight = |i: usize| if positive { set.entry(i).weight() } else { 1.0 };
        Self::round(&mut self.current, self.eligible.iter().copied(), weight)
    }

    fn changed(&mut self, _set: &TargetSet, _change: Change) {
        self.current.clear(); // restart the rotation (and recheck the weights)
    }
}

#[cfg(test)]
mod tests {
    use crate::algorithm::testing::{counts, ids, int, lb};
    use crate::{Algorithm, PickContext, Target, TargetId};

    #[test]
    fn nginx_sequence_for_5_1_1() {
        let mut lb = lb(Algorithm::WeightsPolling, &[5.0, 1.0, 1.0]);
        // nginx's documented example: a a b a c a a, repeated.
        let once = [0, 0, 1, 0, 2, 0, 0];
        let got = ids(&mut lb, 21);
        assert_eq!(got, [once, once, once].concat());
    }

    #[test]
    fn every_window_is_exact() {
        let w = [3.0, 2.0, 1.0, 4.0];
        let mut lb = lb(Algorithm::WeightsPolling, &w);
        let got = ids(&mut lb, 100);
        for window in got.windows(10) {
            assert_eq!(counts(window, 4), [3, 2, 1, 4], "{window:?}");
        }
    }

    #[test]
    fn zero_weights_are_backups_and_all_zero_is_round_robin() {
        let mut lb = lb(Algorithm::WeightsPolling, &[0.0, 2.0, 1.0]);
        assert_eq!(ids(&mut lb, 6), [1, 2, 1, 1, 2, 1]);
        let mut lb = crate::algorithm::testing::lb(Algorithm::WeightsPolling, &[0.0; 3]);
        assert_eq!(ids(&mut lb, 6), [0, 1, 2, 0, 1, 2]);
        let mut lb = crate::algorithm::testing::lb(Algorithm::WeightsPolling, &[]);
        assert!(lb.pick_one(&PickContext::new()).is_none());
    }

    #[test]
    fn removal_mid_rotation_restarts_an_exact_rotation() {
        let mut lb = lb(Algorithm::WeightsPolling, &[5.0, 1.0, 1.0]);
        assert_eq!(ids(&mut lb, 3), [0, 0, 1]);
        lb.del(&TargetId::Int(1)).unwrap();
        // Now {0: 5, 2: 1}: every 6 picks hold five 0s and one 2.
        let got = ids(&mut lb, 18);
        for window in got.windows(6) {
            assert_eq!(counts(window, 3), [5, 0, 1], "{got:?}");
        }
        lb.add(Target::new(1).with_weight(3.0)).unwrap();
        let got = ids(&mut lb, 27);
        for window in got.windows(9) {
            assert_eq!(counts(window, 3), [5, 3, 1], "{got:?}");
        }
    }

    #[test]
    fn ineligible_targets_sit_out_without_gaining() {
        let mut lb = lb(Algorithm::WeightsPolling, &[1.0, 1.0, 1.0]);
        let not0 = |id: &TargetId| *id != TargetId::Int(0);
        let ctx = PickContext::new().with_filter(&not0);
        let got: Vec<i64> = (0..6).map(|_| int(&lb.pick_one(&ctx).unwrap())).collect();
        assert_eq!(got, [1, 2, 1, 2, 1, 2]);
        // Target 0 did not accumulate credit while it sat out: no burst of 0s afterwards.
        assert_eq!(ids(&mut lb, 6), [0, 1, 2, 0, 1, 2]);
    }
}
