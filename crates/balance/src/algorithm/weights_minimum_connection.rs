//! `weightsMinimumConnection`: least in-flight per unit of weight.
//!
//! Rule: the eligible target with the lowest `(in_flight + 1) / w`, the load it would carry per
//! unit of weight after this pick; ties rotate. Counting the pick itself (`+ 1`) makes weights
//! matter from the first pick: idle targets of weights 2 and 1 give `1/2 < 1/1`, so the heavier
//! one goes first, and with all picks held the in-flight counts stay proportional to the
//! weights. Zero-weight targets are backups (used only when no eligible target has a positive
//! weight, then as weight 1). O(n) per pick.
//!
//! ee-core's version computed `c · W / C` with `C = Σ c`, which is NaN when nothing is in flight
//! and then always picked the first target.

use rand::RngCore;

use super::{scan, Change, Cursor, Strategy};
use crate::set::{Request, TargetSet};

#[derive(Debug, Default)]
pub(crate) struct WeightedMinimumConnection {
    cursor: Cursor,
}

impl Strategy for WeightedMinimumConnection {
    fn pick(
        &mut self,
        set: &TargetSet,
        req: &Request<'_>,
        _rng: &mut dyn RngCore,
    ) -> Option<usize> {
        let n = set.len();
        // Best among positive weights by (c + 1) / w, and best among backups by c.
        let mut best: Option<(usize, f64)> = None;
        let mut backup: Option<(usize, u64)> = None;
        for i in scan(self.cursor.start(n), n) {
            if !req.eligible(set, i) {
                continue;
            }
            let e = set.entry(i);
            let w = e.weight();
            let c = e.in_flight();
            if w > 0.0 {
                // Exact on ties: IEEE division is correctly rounded, equal quotients round alike.
                let score = (c as f64 + 1.0) / w;
                if best.is_none_or(|(_, s)| score < s) {
                    best = Some((i, score));
                }
            } else if backup.is_none_or(|(_, b)| c < b) {
                backup = Some((i, c));
            }
        }
        let i = best.map(|(i, _)| i).or(backup.map(|(i, _)| i))?;
        self.cursor.picked(i);
        Some(i)
    }

    fn changed(&mut self, _set: &TargetSet, change: Change) {
        self.cursor.changed(change);
    }
}

#[cfg(test)]
mod tests {
    use crate::algorithm::testing::{counts, hold, ids, lb};
    use crate::{Algorithm, PickContext, TargetId};

    #[test]
    fn held_load_follows_weights() {
        let mut lb = lb(Algorithm::WeightsMinimumConnection, &[2.0, 1.0, 3.0]);
        let (got, _held) = hold(&mut lb, 60);
        assert_eq!(counts(&got, 3), [20, 10, 30]);
        // The first picks already respect weights: heaviest first.
        assert_eq!(got[0], 2);
    }

    #[test]
    fn ties_rotate() {
        let mut lb = lb(Algorithm::WeightsMinimumConnection, &[1.0; 3]);
        assert_eq!(ids(&mut lb, 6), [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn zero_weights_are_backups() {
        let mut lb = lb(Algorithm::WeightsMinimumConnection, &[0.0, 1.0, 0.0]);
        let (got, _held) = hold(&mut lb, 5);
        assert_eq!(got, [1; 5]);
        let not1 = |id: &TargetId| *id != TargetId::Int(1);
        let ctx = PickContext::new().with_filter(&not1);
        let picks: Vec<_> = (0..4).map(|_| lb.pick_one(&ctx).unwrap()).collect();
        let got: Vec<i64> = picks.iter().map(crate::algorithm::testing::int).collect();
        assert_eq!(
            counts(&got, 3),
            [2, 0, 2],
            "backups share by in-flight count"
        );
    }

    #[test]
    fn all_zero_weights_are_least_connection() {
        let mut lb = lb(Algorithm::WeightsMinimumConnection, &[0.0; 3]);
        let (got, _held) = hold(&mut lb, 6);
        assert_eq!(counts(&got, 3), [2, 2, 2]);
        let mut lb = crate::algorithm::testing::lb(Algorithm::WeightsMinimumConnection, &[]);
        assert!(lb.pick_one(&PickContext::new()).is_none());
    }

    #[test]
    fn removal_mid_rotation() {
        let mut lb = lb(Algorithm::WeightsMinimumConnection, &[1.0; 4]);
        assert_eq!(ids(&mut lb, 3), [0, 1, 2]);
        lb.del(&TargetId::Int(1)).unwrap();
        assert_eq!(ids(&mut lb, 4), [3, 0, 2, 3]);
    }
}
