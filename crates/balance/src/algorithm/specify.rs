//! `specify`: by id.
//!
//! Rule: the target whose id equals the context's key, if it is eligible; `None` when the context
//! has no key, no target has that id, or the target is full or filtered out. Ids and keys of
//! different kinds never match: the key `Str("7")` does not select the target `Int(7)`.
//! O(1) (hash lookup).

use rand::RngCore;

use super::Strategy;
use crate::set::{Request, TargetSet};

#[derive(Debug, Default)]
pub(crate) struct Specify;

impl Strategy for Specify {
    fn pick(
        &mut self,
        set: &TargetSet,
        req: &Request<'_>,
        _rng: &mut dyn RngCore,
    ) -> Option<usize> {
        let i = set.find(req.key?)?;
        req.eligible(set, i).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Algorithm, LoadBalancer, PickContext, Target, TargetId};

    fn lb() -> LoadBalancer {
        LoadBalancer::new(
            [
                Target::new(7),
                Target::new("7"),
                Target::new("w").with_capacity(Some(1)),
            ],
            Algorithm::Specify,
        )
        .unwrap()
    }

    #[test]
    fn picks_by_id_with_strict_kinds() {
        let mut lb = lb();
        let p = lb.pick_one(&PickContext::new().with_key(7)).unwrap();
        assert_eq!(p.id(), &TargetId::Int(7));
        let p = lb.pick_one(&PickContext::new().with_key("7")).unwrap();
        assert_eq!(p.id(), &TargetId::Str("7".into()));
        let id = TargetId::from("w");
        assert_eq!(
            lb.pick_one(&PickContext::new().with_key(&id)).unwrap().id(),
            &id
        );
    }

    #[test]
    fn none_when_absent_missing_key_full_or_filtered() {
        let mut lb = lb();
        assert!(lb.pick_one(&PickContext::new()).is_none(), "no key");
        assert!(
            lb.pick_one(&PickContext::new().with_key(8)).is_none(),
            "absent"
        );
        assert!(
            lb.pick_one(&PickContext::new().with_key("x")).is_none(),
            "absent"
        );
        let held = lb.pick_one(&PickContext::new().with_key("w")).unwrap();
        assert!(
            lb.pick_one(&PickContext::new().with_key("w")).is_none(),
            "full"
        );
        drop(held);
        assert!(
            lb.pick_one(&PickContext::new().with_key("w")).is_some(),
            "room again"
        );
        let not7 = |id: &TargetId| *id != TargetId::Int(7);
        assert!(
            lb.pick_one(&PickContext::new().with_key(7).with_filter(&not7))
                .is_none(),
            "filtered"
        );
        lb.del(&TargetId::Int(7)).unwrap();
        assert!(
            lb.pick_one(&PickContext::new().with_key(7)).is_none(),
            "removed"
        );
        assert!(
            lb.pick_one(&PickContext::new().with_key("7")).is_some(),
            "the string id stays"
        );
    }

    #[test]
    fn pick_multi_returns_at_most_the_one_target() {
        let mut lb = lb();
        let picks = lb.pick_multi(3, &PickContext::new().with_key(7));
        assert_eq!(picks.len(), 1);
        assert_eq!(picks[0].id(), &TargetId::Int(7));
    }
}
