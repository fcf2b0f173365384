//! `leastLoad`: in-flight picks plus cpu.
//!
//! Rule: the eligible target with the lowest `in_flight + cpu / 100`, where `cpu` is the
//! percentage from the last [`refresh_params`](crate::LoadBalancer::refresh_params) (100 = one
//! core busy): each in-flight pick counts 1 and each fully busy core counts 1. A target without
//! a cpu figure counts 0 %. Ties rotate. Weights are ignored. O(n) per pick.
//!
//! The in-flight part is always current; the cpu part is as old as the last refresh, so a target
//! busy with something other than its picks (a leak, a runaway job) is avoided.

use rand::RngCore;

use super::{Change, Cursor, Strategy};
use crate::set::{Request, TargetSet};

#[derive(Debug, Default)]
pub(crate) struct LeastLoad {
    cursor: Cursor,
}

impl Strategy for LeastLoad {
    fn pick(
        &mut self,
        set: &TargetSet,
        req: &Request<'_>,
        _rng: &mut dyn RngCore,
    ) -> Option<usize> {
        self.cursor.pick_lowest(set, req, None, |e| {
            e.in_flight() as f64 + e.load.cpu.unwrap_or(0.0) / 100.0
        })
    }

    fn changed(&mut self, _set: &TargetSet, change: Change) {
        self.cursor.changed(change);
    }
}

#[cfg(test)]
mod tests {
    use crate::algorithm::testing::{counts, hold, ids, lb};
    use crate::{Algorithm, LoadSample, PickContext, TargetId};

    #[test]
    fn cpu_and_in_flight_add_up() {
        let mut lb = lb(Algorithm::LeastLoad, &[1.0; 3]);
        lb.refresh_params([
            (TargetId::Int(0), LoadSample::new(150.0, 0)), // 1.5
            (TargetId::Int(1), LoadSample::new(50.0, 0)),  // 0.5
        ]); // target 2: unknown cpu, 0
        let (got, _held) = hold(&mut lb, 4);
        // Scores before each pick: [1.5, .5, 0] -> 2; [1.5, .5, 1] -> 1; [1.5, 1.5, 1] -> 2;
        // [1.5, 1.5, 2] -> 0.
        assert_eq!(got, [2, 1, 2, 0]);
    }

    #[test]
    fn nan_or_negative_cpu_is_unknown() {
        let mut lb = lb(Algorithm::LeastLoad, &[1.0; 2]);
        lb.refresh_params([
            (TargetId::Int(0), LoadSample::new(f64::NAN, 0)),
            (TargetId::Int(1), LoadSample::new(-5.0, 0)),
        ]);
        assert_eq!(lb.load(&TargetId::Int(0)).unwrap().cpu, None);
        assert_eq!(lb.load(&TargetId::Int(1)).unwrap().cpu, None);
        let (got, _held) = hold(&mut lb, 4);
        assert_eq!(counts(&got, 2), [2, 2]);
    }

    #[test]
    fn ties_rotate_and_empty_is_none() {
        let mut lb = lb(Algorithm::LeastLoad, &[1.0; 3]);
        assert_eq!(ids(&mut lb, 4), [0, 1, 2, 0]);
        let mut lb = crate::algorithm::testing::lb(Algorithm::LeastLoad, &[]);
        assert!(lb.pick_one(&PickContext::new()).is_none());
    }

    #[test]
    fn removal_mid_rotation() {
        let mut lb = lb(Algorithm::LeastLoad, &[1.0; 4]);
        assert_eq!(ids(&mut lb, 3), [0, 1, 2]);
        lb.del(&TargetId::Int(0)).unwrap();
        assert_eq!(ids(&mut lb, 3), [3, 1, 2]);
    }
}
