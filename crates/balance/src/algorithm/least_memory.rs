//! `leastMemory`: dispatch by memory pressure (as load-process-manager dispatches by RSS).
//!
//! Rule: the eligible target with the lowest memory figure from the last
//! [`refresh_params`](crate::LoadBalancer::refresh_params); ties go to the one with fewer
//! in-flight picks, then rotate. A target without a memory figure (not refreshed yet, or
//! [`clean`](crate::LoadBalancer::clean)ed) counts as 0 bytes: a freshly started process is
//! small, and this sends it work at once. Weights are ignored. O(n) per pick.
//!
//! Caveat: figures are as old as the last refresh, and in between every pick goes to the same
//! lowest target; give targets a capacity (or filter full ones) so one target cannot take all.

use rand::RngCore;

use super::{Change, Cursor, Strategy};
use crate::set::{Request, TargetSet};

#[derive(Debug, Default)]
pub(crate) struct LeastMemory {
    cursor: Cursor,
}

impl Strategy for LeastMemory {
    fn pick(
        &mut self,
        set: &TargetSet,
        req: &Request<'_>,
        _rng: &mut dyn RngCore,
    ) -> Option<usize> {
        self.cursor.pick_lowest(set, req, None, |e| {
            (e.load.memory.unwrap_or(0), e.in_flight())
        })
    }

    fn changed(&mut self, _set: &TargetSet, change: Change) {
        self.cursor.changed(change);
    }
}

#[cfg(test)]
mod tests {
    use crate::algorithm::testing::{hold, ids, int, lb};
    use crate::{Algorithm, LoadSample, PickContext, TargetId};

    #[test]
    fn lowest_memory_wins() {
        let mut lb = lb(Algorithm::LeastMemory, &[1.0; 3]);
        let n = lb.refresh_params([
            (TargetId::Int(0), LoadSample::new(5.0, 300 << 20)),
            (TargetId::Int(1), LoadSample::new(90.0, 100 << 20)),
            (TargetId::Int(2), LoadSample::new(1.0, 200 << 20)),
            (TargetId::Int(9), LoadSample::new(1.0, 1)), // unknown id: ignored
        ]);
        assert_eq!(n, 3);
        assert_eq!(ids(&mut lb, 3), [1, 1, 1]);
        lb.refresh_params([(TargetId::Int(1), LoadSample::new(0.0, 400 << 20))]);
        assert_eq!(ids(&mut lb, 2), [2, 2]);
    }

    #[test]
    fn unknown_memory_counts_as_zero_and_ties_spread_by_in_flight() {
        let mut lb = lb(Algorithm::LeastMemory, &[1.0; 3]);
        lb.refresh_params([(TargetId::Int(0), LoadSample::new(0.0, 1 << 20))]);
        let (got, _held) = hold(&mut lb, 4);
        assert_eq!(
            got,
            [1, 2, 1, 2],
            "the two unmeasured targets share the work"
        );
        lb.clean(Some(&TargetId::Int(0)));
        let p = lb.pick_one(&PickContext::new()).unwrap();
        assert_eq!(int(&p), 0, "cleaned: no figure, and nothing in flight");
    }

    #[test]
    fn ties_rotate_and_empty_is_none() {
        let mut lb = lb(Algorithm::LeastMemory, &[1.0; 3]);
        assert_eq!(ids(&mut lb, 6), [0, 1, 2, 0, 1, 2]);
        let mut lb = crate::algorithm::testing::lb(Algorithm::LeastMemory, &[]);
        assert!(lb.pick_one(&PickContext::new()).is_none());
    }

    #[test]
    fn removal_mid_rotation() {
        let mut lb = lb(Algorithm::LeastMemory, &[1.0; 4]);
        assert_eq!(ids(&mut lb, 2), [0, 1]);
        lb.del(&TargetId::Int(1)).unwrap();
        assert_eq!(ids(&mut lb, 3), [2, 3, 0]);
    }
}
