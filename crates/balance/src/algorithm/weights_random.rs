//! `weights` and `weightsRandom`: random, proportional to weight.
//!
//! Rule: each eligible target `i` with probability `w_i / Σ w`, the sum over eligible targets,
//! for any non-negative real weights. Zero-weight targets are backups: picked only when no
//! eligible target has a positive weight, and then uniformly.
//!
//! How: a cumulative-weight array over all targets, rebuilt lazily after a change; a draw
//! `r ∈ [0, Σ w)` picks the first `i` with `cum_i > r` by binary search (O(log n)). If the drawn
//! target is ineligible the draw is repeated (up to three draws), then an exact O(n) draw among
//! the eligible targets is made. Rejection keeps the distribution exact: conditioned on
//! eligibility, `w_i / Σ_all w` becomes `w_i / Σ_eligible w`.
//!
//! ee-core's `weights` (`argmax(w_k + rand·W)`) gave `[1, 2]` 22 % / 78 % and its
//! `weightsRandom` was proportional only for integers; both names now mean this rule.

use rand::{Rng, RngCore};

use super::{uniform, Change, Strategy};
use crate::set::{Request, TargetSet};

#[derive(Debug, Default)]
pub(crate) struct WeightedRandom {
    /// `cum[i] = w_0 + … + w_i`.
    cum: Vec<f64>,
    stale: bool,
}

impl WeightedRandom {
    fn rebuild(&mut self, set: &TargetSet) {
        self.cum.clear();
        let mut acc = 0.0;
        for e in set.entries() {
            acc += e.weight();
            self.cum.push(acc);
        }
        self.stale = false;
    }
}

impl Strategy for WeightedRandom {
    fn pick(&mut self, set: &TargetSet, req: &Request<'_>, rng: &mut dyn RngCore) -> Option<usize> {
        if self.stale || self.cum.len() != set.len() {
            self.rebuild(set);
        }
        let n = set.len();
        let total = self.cum.last().copied().unwrap_or(0.0);
        if total > 0.0 {
            for _ in 0..3 {
                let r = rng.random::<f64>() * total;
                let i = self.cum.partition_point(|&c| c <= r);
                if i < n && req.eligible(set, i) {
                    return Some(i);
                }
            }
        }
        // Exact draw among eligible targets.
        let eligible_total: f64 = (0..n)
            .filter(|&i| req.eligible(set, i))
            .map(|i| set.entry(i).weight())
            .sum();
        if eligible_total <= 0.0 {
            return uniform(set, req, rng); // only zero-weight (backup) targets, or none
        }
        let r = rng.random::<f64>() * eligible_total;
        let mut acc = 0.0;
        let mut last = None;
        for i in 0..n {
            let w = set.entry(i).weight();
            if w > 0.0 && req.eligible(set, i) {
                acc += w;
                if acc > r {
                    return Some(i);
                }
                last = Some(i);
            }
        }
        last // rounding put r at the very end
    }

    fn changed(&mut self, _set: &TargetSet, _change: Change) {
        self.stale = true;
    }
}

#[cfg(test)]
mod tests {
    use crate::algorithm::testing::{counts, ids, int, lb};
    use crate::{Algorithm, PickContext, Target, TargetId};

    /// Each count within 5 standard deviations of `n · p`.
    fn assert_proportional(c: &[usize], weights: &[f64]) {
        let n: usize = c.iter().sum();
        let total: f64 = weights.iter().sum();
        for (i, (&k, &w)) in c.iter().zip(weights).enumerate() {
            let p = w / total;
            let mean = n as f64 * p;
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (k as f64 - mean).abs() <= 5.0 * sd + 1.0,
                "target {i}: {k}, expected {mean:.0} ± {sd:.0}"
            );
        }
    }

    #[test]
    fn proportional_to_real_weights_for_both_names() {
        for alg in [Algorithm::Weights, Algorithm::WeightsRandom] {
            let w = [1.0, 2.0, 0.5, 6.5];
            let mut lb = lb(alg, &w);
            assert_proportional(&counts(&ids(&mut lb, 50_000), 4), &w);
        }
    }

    #[test]
    fn one_to_two_is_one_third_not_22_percent() {
        let mut lb = lb(Algorithm::Weights, &[1.0, 2.0]);
        let c = counts(&ids(&mut lb, 60_000), 2);
        assert_proportional(&c, &[1.0, 2.0]);
        assert!(c[0] > 19_000, "{c:?}"); // ee-core's rule gives ~13,200
    }

    #[test]
    fn zero_weights_are_backups() {
        let mut lb = lb(Algorithm::WeightsRandom, &[0.0, 1.0, 0.0]);
        assert!(ids(&mut lb, 1_000).iter().all(|&i| i == 1));
        // With target 1 filtered out, the zero-weight targets share the work uniformly.
        let not1 = |id: &TargetId| *id != TargetId::Int(1);
        let ctx = PickContext::new().with_filter(&not1);
        let got: Vec<i64> = (0..10_000)
            .map(|_| int(&lb.pick_one(&ctx).unwrap()))
            .collect();
        let c = counts(&got, 3);
        assert_eq!(c[1], 0);
        assert!((4_650..=5_350).contains(&c[0]), "{c:?}");
    }

    #[test]
    fn all_zero_weights_fall_back_to_uniform() {
        let mut lb = lb(Algorithm::Weights, &[0.0; 4]);
        let c = counts(&ids(&mut lb, 20_000), 4);
        assert_proportional(&c, &[1.0; 4]);
    }

    #[test]
    fn filtered_draw_stays_proportional_among_eligible() {
        let w = [5.0, 1.0, 3.0, 1.0];
        let mut lb = lb(Algorithm::Weights, &w);
        let not0 = |id: &TargetId| *id != TargetId::Int(0);
        let ctx = PickContext::new().with_filter(&not0);
        let got: Vec<i64> = (0..50_000)
            .map(|_| int(&lb.pick_one(&ctx).unwrap()))
            .collect();
        let c = counts(&got, 4);
        assert_eq!(c[0], 0);
        assert_proportional(&c[1..], &w[1..]);
    }

    #[test]
    fn tracks_additions_removals_and_reweights() {
        let mut lb = lb(Algorithm::Weights, &[1.0, 1.0]);
        lb.add(Target::new(2).with_weight(2.0)).unwrap();
        assert_proportional(&counts(&ids(&mut lb, 40_000), 3), &[1.0, 1.0, 2.0]);
        lb.del(&TargetId::Int(0)).unwrap();
        lb.update_params(&TargetId::Int(1), crate::ParamsUpdate::new().weight(6.0))
            .unwrap();
        let c = counts(&ids(&mut lb, 40_000), 3);
        assert_eq!(c[0], 0);
        assert_proportional(&c[1..], &[6.0, 2.0]);
        lb.wipe();
        assert!(lb.pick_one(&PickContext::new()).is_none());
    }
}
