//! The target list of a [`LoadBalancer`]: adding, removing, replacing, wiping, and the
//! validation every one of them shares (a rejected call changes nothing).

use std::collections::{HashMap, HashSet};

use rand::RngCore;

use crate::algorithm::Change;
use crate::set::Entry;
use crate::target::weight_is_valid;
use crate::{Error, LoadBalancer, Target, TargetId};

impl<R: RngCore> LoadBalancer<R> {
    /// Appends a target (it joins rotations at the end of the list).
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateId`] if the id is present (the seed only warned),
    /// [`Error::InvalidWeight`] for a bad weight. Nothing changes then.
    pub fn add(&mut self, target: Target) -> Result<(), Error> {
        validate(&target)?;
        if self.set.find(target.id.as_key()).is_some() {
            return Err(Error::DuplicateId { id: target.id });
        }
        self.set.push(Entry::new(normalized(target)));
        self.strategy.changed(&self.set, Change::Added);
        Ok(())
    }

    /// Removes a target and returns it, or `None` if absent. Its outstanding picks stay valid
    /// and keep decrementing its (now detached) counter. Rotations continue with the next
    /// target; `weightsPolling` restarts its rotation.
    pub fn del(&mut self, id: &TargetId) -> Option<Target> {
        let i = self.set.find(id.as_key())?;
        let entry = self.set.remove(i);
        self.strategy.changed(&self.set, Change::Removed(i));
        Some(entry.target)
    }

    /// Removes every target and resets the algorithm's state. Outstanding picks stay valid.
    pub fn wipe(&mut self) {
        self.set.take();
        self.strategy = self.algorithm.strategy();
    }

    /// Replaces the target list (in this order). A target whose id was already present keeps
    /// its in-flight count and load figures (its weight and capacity come from the new list);
    /// the others start fresh. Rotations restart.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateId`] if the list repeats an id, [`Error::InvalidWeight`] for a bad
    /// weight. Nothing changes then.
    pub fn set_targets(&mut self, targets: impl IntoIterator<Item = Target>) -> Result<(), Error> {
        let targets: Vec<Target> = targets.into_iter().map(normalized).collect();
        let mut seen = HashSet::with_capacity(targets.len());
        for t in &targets {
            validate(t)?;
            if !seen.insert(&t.id) {
                return Err(Error::DuplicateId { id: t.id.clone() });
            }
        }
        let mut old: HashMap<TargetId, Entry> = self
            .set
            .take()
            .into_iter()
            .map(|e| (e.id().clone(), e))
            .collect();
        let entries = targets
            .into_iter()
            .map(|t| match old.remove(&t.id) {
                Some(mut e) => {
                    e.target = t;
                    e
                }
                None => Entry::new(t),
            })
            .collect();
        self.set.replace(entries);
        self.strategy.changed(&self.set, Change::Replaced);
        Ok(())
    }
}

fn validate(t: &Target) -> Result<(), Error> {
    if weight_is_valid(t.weight) {
        Ok(())
    } else {
        Err(Error::InvalidWeight {
            id: t.id.clone(),
            weight: t.weight,
        })
    }
}

/// `-0.0` becomes `0.0`.
fn normalized(mut t: Target) -> Target {
    t.weight += 0.0;
    t
}

#[cfg(test)]
mod tests {
    use super::super::seeded;
    use crate::{
        Algorithm, Error, LoadBalancer, LoadSample, ParamsUpdate, PickContext, Target, TargetId,
    };

    #[test]
    fn bad_weights_are_rejected_everywhere_and_change_nothing() {
        for w in [-1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e10] {
            let bad = Target::new(9).with_weight(w);
            let err =
                LoadBalancer::new([Target::new(1), bad.clone()], Algorithm::Weights).unwrap_err();
            assert!(
                matches!(err, Error::InvalidWeight { ref id, .. } if *id == TargetId::Int(9)),
                "{err}"
            );

            let mut lb = seeded(vec![Target::new(1), Target::new(2)], Algorithm::Weights);
            assert!(matches!(
                lb.add(bad.clone()),
                Err(Error::InvalidWeight { .. })
            ));
            assert!(matches!(
                lb.set_targets([Target::new(5), bad]),
                Err(Error::InvalidWeight { .. })
            ));
            assert!(matches!(
                lb.update_params(
                    &TargetId::Int(1),
                    ParamsUpdate::new().weight(w).capacity(Some(0))
                ),
                Err(Error::InvalidWeight { .. })
            ));
            let ids: Vec<_> = lb.targets().map(|t| t.id.clone()).collect();
            assert_eq!(ids, [TargetId::Int(1), TargetId::Int(2)]);
            assert_eq!(
                lb.get(&TargetId::Int(1)).unwrap().capacity,
                None,
                "rejected update applied nothing"
            );
        }
    }

    #[test]
    fn zero_and_negative_zero_weights_are_accepted() {
        let mut lb = seeded(
            vec![
                Target::new(1).with_weight(-0.0),
                Target::new(2).with_weight(0.0),
            ],
            Algorithm::Weights,
        );
        assert!(lb.get(&TargetId::Int(1)).unwrap().weight.is_sign_positive());
        assert!(
            lb.pick_one(&PickContext::new()).is_some(),
            "all-zero weights: uniform fallback"
        );
    }

    #[test]
    fn duplicates_are_rejected() {
        let err =
            LoadBalancer::new([Target::new(1), Target::new(1)], Algorithm::Polling).unwrap_err();
        assert_eq!(
            err,
            Error::DuplicateId {
                id: TargetId::Int(1)
            }
        );
        let mut lb = seeded(vec![Target::new(1), Target::new("1")], Algorithm::Polling);
        assert_eq!(lb.len(), 2, "string and integer ids are distinct");
        assert_eq!(
            lb.add(Target::new("1")),
            Err(Error::DuplicateId {
                id: TargetId::from("1")
            })
        );
        assert_eq!(lb.len(), 2);
    }

    #[test]
    fn set_targets_keeps_counters_of_kept_ids() {
        let mut lb = seeded(vec![Target::new(1), Target::new(2)], Algorithm::First);
        let held = lb.pick_one(&PickContext::new()).unwrap();
        lb.refresh_params([(1_i64, LoadSample::new(10.0, 100))]);
        lb.set_targets([Target::new(3), Target::new(1).with_capacity(Some(1))])
            .unwrap();
        assert_eq!(lb.in_flight(&TargetId::Int(1)), Some(1));
        assert_eq!(lb.load(&TargetId::Int(1)).unwrap().memory, Some(100));
        assert_eq!(lb.has_room(&TargetId::Int(1)), Some(false));
        assert!(!lb.contains(&TargetId::Int(2)));
        drop(held);
        assert_eq!(lb.in_flight(&TargetId::Int(1)), Some(0));
        assert_eq!(lb.has_room(&TargetId::Int(1)), Some(true));
        assert_eq!(
            lb.set_targets([Target::new(4), Target::new(4)]),
            Err(Error::DuplicateId {
                id: TargetId::Int(4)
            })
        );
        assert_eq!(lb.len(), 2, "rejected list changed nothing");
    }
}
