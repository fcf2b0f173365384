//! `minimumConnection`: least in-flight.
//!
//! Rule: the eligible target with the fewest in-flight picks; ties rotate (the scan starts just
//! after the previous pick, and the first minimum in scan order wins). Weights are ignored.
//! O(n) per pick, O(1) when the next target in rotation is idle: in-flight counts change when
//! picks are dropped, outside the balancer, so no index can be kept ordered.

use rand::RngCore;

use super::{Change, Cursor, Strategy};
use crate::set::{Request, TargetSet};

#[derive(Debug, Default)]
pub(crate) struct MinimumConnection {
    cursor: Cursor,
}

impl Strategy for MinimumConnection {
    fn pick(
        &mut self,
        set: &TargetSet,
        req: &Request<'_>,
        _rng: &mut dyn RngCore,
    ) -> Option<usize> {
        // Nothing beats an idle target: the scan stops at the first one.
        self.cursor
            .pick_lowest(set, req, Some(0), |e| e.in_flight())
    }

    fn changed(&mut self, _set: &TargetSet, change: Change) {
        self.cursor.changed(change);
    }
}

#[cfg(test)]
mod tests {
    use crate::algorithm::testing::{hold, ids, int, lb};
    use crate::{Algorithm, PickContext, TargetId};

    #[test]
    fn fewest_in_flight_wins() {
        let mut lb = lb(Algorithm::MinimumConnection, &[1.0; 3]);
        let (got, mut held) = hold(&mut lb, 6);
        assert_eq!(got, [0, 1, 2, 0, 1, 2], "balanced while all are held");
        // Finish both jobs on target 1: it is the only one with 0 in flight.
        held.retain(|p| p.id() != &TargetId::Int(1));
        assert_eq!(int(&lb.pick_one(&PickContext::new()).unwrap()), 1);
    }

    #[test]
    fn ties_rotate_instead_of_always_the_first() {
        let mut lb = lb(Algorithm::MinimumConnection, &[1.0; 4]);
        // Each pick is dropped at once: all tie at 0 every time.
        assert_eq!(ids(&mut lb, 8), [0, 1, 2, 3, 0, 1, 2, 3]);
    }

    #[test]
    fn ignores_weights_and_handles_empty() {
        let mut lb = lb(Algorithm::MinimumConnection, &[0.0, 100.0]);
        let (got, _held) = hold(&mut lb, 4);
        assert_eq!(got, [0, 1, 0, 1]);
        let mut lb = crate::algorithm::testing::lb(Algorithm::MinimumConnection, &[]);
        assert!(lb.pick_one(&PickContext::new()).is_none());
    }

    #[test]
    fn removal_mid_rotation() {
        let mut lb = lb(Algorithm::MinimumConnection, &[1.0; 4]);
        assert_eq!(ids(&mut lb, 2), [0, 1]);
        lb.del(&TargetId::Int(2)).unwrap();
        assert_eq!(ids(&mut lb, 4), [3, 0, 1, 3]);
    }
}
