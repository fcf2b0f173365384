//! `polling`: round robin.
//!
//! Rule: the first eligible target at or after the cursor, in list order, wrapping around; the
//! cursor then moves just past it. Removing a target keeps the rotation in place (the targets
//! after it are neither skipped nor repeated). O(1) when the next target is eligible, O(n) worst.

use rand::RngCore;

use super::{scan, Change, Cursor, Strategy};
use crate::set::{Request, TargetSet};

#[derive(Debug, Default)]
pub(crate) struct Polling {
    cursor: Cursor,
}

impl Strategy for Polling {
    fn pick(
        &mut self,
        set: &TargetSet,
        req: &Request<'_>,
        _rng: &mut dyn RngCore,
    ) -> Option<usize> {
        let n = set.len();
        let i = scan(self.cursor.start(n), n).find(|&i| req.eligible(set, i))?;
        self.cursor.picked(i);
        Some(i)
    }

    fn changed(&mut self, _set: &TargetSet, change: Change) {
        self.cursor.changed(change);
    }
}

#[cfg(test)]
mod tests {
    use crate::algorithm::testing::{hold, ids, int, lb};
    use crate::{Algorithm, PickContext, Target, TargetId};

    #[test]
    fn rotates_in_list_order_ignoring_weights() {
        let mut lb = lb(Algorithm::Polling, &[1.0, 5.0, 0.0]);
        assert_eq!(ids(&mut lb, 7), [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn empty_list_returns_none() {
        let mut lb = lb(Algorithm::Polling, &[]);
        assert!(lb.pick_one(&PickContext::new()).is_none());
    }

    #[test]
    fn removal_mid_rotation_neither_skips_nor_repeats() {
        let mut lb = lb(Algorithm::Polling, &[1.0; 5]);
        assert_eq!(ids(&mut lb, 2), [0, 1]);
        lb.del(&TargetId::from(0)).unwrap(); // before the cursor
        assert_eq!(ids(&mut lb, 1), [2]);
        lb.del(&TargetId::from(3)).unwrap(); // the next one
        assert_eq!(ids(&mut lb, 4), [4, 1, 2, 4]);
        lb.del(&TargetId::from(4)).unwrap(); // the last one, just picked
        assert_eq!(ids(&mut lb, 3), [1, 2, 1]);
        lb.add(Target::new(9)).unwrap(); // appended: joins the rotation at the end
        assert_eq!(ids(&mut lb, 4), [2, 9, 1, 2]);
    }

    #[test]
    fn skips_full_and_filtered_targets() {
        let mut lb = lb(Algorithm::Polling, &[1.0; 4]);
        lb.update_params(
            &TargetId::from(1),
            crate::ParamsUpdate::new().capacity(Some(1)),
        )
        .unwrap();
        let (first, _held) = hold(&mut lb, 2);
        assert_eq!(first, [0, 1]);
        // Target 1 is full now; 3 is filtered out.
        let no3 = |id: &TargetId| *id != TargetId::from(3);
        let ctx = PickContext::new().with_filter(&no3);
        let got: Vec<i64> = (0..4).map(|_| int(&lb.pick_one(&ctx).unwrap())).collect();
        assert_eq!(got, [2, 0, 2, 0]);
        let none = |_: &TargetId| false;
        assert!(lb
            .pick_one(&PickContext::new().with_filter(&none))
            .is_none());
    }
}
