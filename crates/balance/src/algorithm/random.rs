//! `random`: uniform.
//!
//! Rule: every eligible target with probability `1 / m` (`m` eligible targets); weights are
//! ignored. Up to four uniform draws over all targets, then an exact draw among the eligible
//! ones, so the result is exactly uniform either way. O(1) when most targets are eligible.

use rand::RngCore;

use super::{uniform, Strategy};
use crate::set::{Request, TargetSet};

#[derive(Debug, Default)]
pub(crate) struct Random;

impl Strategy for Random {
    fn pick(&mut self, set: &TargetSet, req: &Request<'_>, rng: &mut dyn RngCore) -> Option<usize> {
        uniform(set, req, rng)
    }
}

#[cfg(test)]
mod tests {
    use crate::algorithm::testing::{counts, ids, int, lb};
    use crate::{Algorithm, PickContext, TargetId};

    #[test]
    fn uniform_ignoring_weights() {
        let mut lb = lb(Algorithm::Random, &[1.0, 10.0, 0.0, 3.0]);
        let c = counts(&ids(&mut lb, 40_000), 4);
        // Each expected 10,000, sd ~87: 5 sd.
        for (i, &k) in c.iter().enumerate() {
            assert!((9_565..=10_435).contains(&k), "target {i}: {k} of 40000");
        }
    }

    #[test]
    fn only_eligible_targets_uniformly() {
        let mut lb = lb(Algorithm::Random, &[1.0; 10]);
        let only = |id: &TargetId| matches!(id, TargetId::Int(2 | 7));
        let ctx = PickContext::new().with_filter(&only);
        let got: Vec<i64> = (0..20_000)
            .map(|_| int(&lb.pick_one(&ctx).unwrap()))
            .collect();
        let c = counts(&got, 10);
        assert_eq!(c[2] + c[7], 20_000);
        assert!((9_650..=10_350).contains(&c[2]), "{c:?}");
    }

    #[test]
    fn empty_and_all_filtered_return_none() {
        let mut lb = lb(Algorithm::Random, &[]);
        assert!(lb.pick_one(&PickContext::new()).is_none());
        let mut lb = crate::algorithm::testing::lb(Algorithm::Random, &[1.0; 3]);
        let none = |_: &TargetId| false;
        assert!(lb
            .pick_one(&PickContext::new().with_filter(&none))
            .is_none());
    }
}
