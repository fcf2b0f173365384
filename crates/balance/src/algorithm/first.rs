//! `first`: HAProxy's first-fit.
//!
//! Rule: the lowest-index eligible target. With capacities set, target 0 is filled up to its
//! capacity before target 1 gets anything, and so on, so the last targets stay idle and a pool
//! can retire them. Without capacities (or a filter) it always returns target 0. O(k) where `k`
//! is the number of full targets before the first with room.

use rand::RngCore;

use super::Strategy;
use crate::set::{Request, TargetSet};

#[derive(Debug, Default)]
pub(crate) struct First;

impl Strategy for First {
    fn pick(
        &mut self,
        set: &TargetSet,
        req: &Request<'_>,
        _rng: &mut dyn RngCore,
    ) -> Option<usize> {
        (0..set.len()).find(|&i| req.eligible(set, i))
    }
}

#[cfg(test)]
mod tests {
    use crate::algorithm::testing::{hold, int};
    use crate::{Algorithm, LoadBalancer, PickContext, Target};

    #[test]
    fn fills_in_list_order_up_to_capacity() {
        let targets = [
            Target::new(10).with_capacity(Some(2)),
            Target::new(20).with_capacity(Some(1)),
            Target::new(30).with_capacity(Some(3)),
        ];
        let mut lb = LoadBalancer::from_rng(
            targets,
            Algorithm::First,
            rand::SeedableRng::seed_from_u64(1),
        )
        .unwrap();
        let (got, held) = hold(&mut lb, 6);
        assert_eq!(got, [10, 10, 20, 30, 30, 30]);
        assert!(lb.pick_one(&PickContext::new()).is_none(), "all full");
        // Freeing a slot on target 20 makes it the first with room again.
        let mut held = held;
        drop(held.remove(2));
        assert_eq!(int(&lb.pick_one(&PickContext::new()).unwrap()), 20);
    }

    #[test]
    fn without_capacity_always_the_first() {
        let mut lb = crate::algorithm::testing::lb(Algorithm::First, &[0.0, 1.0]);
        let (got, _held) = hold(&mut lb, 5);
        assert_eq!(got, [0; 5]);
        let mut lb = crate::algorithm::testing::lb(Algorithm::First, &[]);
        assert!(lb.pick_one(&PickContext::new()).is_none());
    }
}
