//! The per-target parameters of a [`LoadBalancer`]: load figures (`refresh_params`), weight
//! and capacity changes (`update_params`), and forgetting them (`clean`).

use rand::RngCore;

use crate::algorithm::Change;
use crate::target::weight_is_valid;
use crate::{Error, LoadBalancer, LoadSample, ParamsUpdate, TargetId};

impl<R: RngCore> LoadBalancer<R> {
    /// Records load figures: each `(id, sample)` replaces that target's figures. Ids not present
    /// are ignored; targets not mentioned keep theirs. Returns how many targets were updated.
    /// `leastMemory` and `leastLoad` read the figures; a target never refreshed has none (see
    /// each algorithm for how that counts).
    pub fn refresh_params<K: Into<TargetId>>(
        &mut self,
        samples: impl IntoIterator<Item = (K, LoadSample)>,
    ) -> usize {
        let mut updated = 0;
        for (id, sample) in samples {
            let id = id.into();
            if let Some(i) = self.set.find(id.as_key()) {
                self.set.entry_mut(i).load = sample.sanitized();
                updated += 1;
            }
        }
        updated
    }

    /// Changes one target's weight, capacity and/or load figures.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if no target has this id, [`Error::InvalidWeight`] for a bad weight.
    /// Nothing changes then.
    pub fn update_params(&mut self, id: &TargetId, update: ParamsUpdate) -> Result<(), Error> {
        let i = self
            .set
            .find(id.as_key())
            .ok_or_else(|| Error::NotFound { id: id.clone() })?;
        if let Some(w) = update.weight {
            if !weight_is_valid(w) {
                return Err(Error::InvalidWeight {
                    id: id.clone(),
                    weight: w,
                });
            }
        }
        let e = self.set.entry_mut(i);
        if let Some(c) = update.capacity {
            e.target.capacity = c;
        }
        if let Some(load) = update.load {
            e.load = load.sanitized();
        }
        if let Some(w) = update.weight {
            let changed = e.target.weight != w + 0.0;
            e.target.weight = w + 0.0;
            if changed {
                self.strategy.changed(&self.set, Change::Reweighted);
            }
        }
        Ok(())
    }

    /// Forgets state. `clean(Some(id))` forgets that target's load figures; `clean(None)`
    /// forgets every target's load figures and restarts the algorithm's rotation. In-flight
    /// counts are never touched: they belong to the outstanding picks and fall back to zero as
    /// those are dropped (resetting them would let a dropped pick count below zero).
    pub fn clean(&mut self, id: Option<&TargetId>) {
        match id {
            Some(id) => {
                if let Some(i) = self.set.find(id.as_key()) {
                    self.set.entry_mut(i).load = LoadSample::default();
                }
            }
            None => {
                for i in 0..self.set.len() {
                    self.set.entry_mut(i).load = LoadSample::default();
                }
                self.strategy = self.algorithm.strategy();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::seeded;
    use crate::{Algorithm, Error, LoadSample, ParamsUpdate, PickContext, Target, TargetId};

    #[test]
    fn update_params_and_clean() {
        let mut lb = seeded(vec![Target::new(1)], Algorithm::LeastLoad);
        assert_eq!(
            lb.update_params(&TargetId::Int(2), ParamsUpdate::new()),
            Err(Error::NotFound {
                id: TargetId::Int(2)
            })
        );
        lb.update_params(
            &TargetId::Int(1),
            ParamsUpdate::new()
                .weight(3.0)
                .capacity(Some(0))
                .load(LoadSample::cpu(40.0)),
        )
        .unwrap();
        let t = lb.get(&TargetId::Int(1)).unwrap();
        assert_eq!((t.weight, t.capacity), (3.0, Some(0)));
        assert_eq!(lb.load(&TargetId::Int(1)).unwrap().cpu, Some(40.0));
        assert!(
            lb.pick_one(&PickContext::new()).is_none(),
            "capacity 0 parks the target"
        );
        lb.clean(Some(&TargetId::Int(1)));
        assert_eq!(lb.load(&TargetId::Int(1)), Some(LoadSample::default()));
        lb.refresh_params([(1_u32, LoadSample::memory(5))]);
        lb.clean(None);
        assert_eq!(lb.load(&TargetId::Int(1)), Some(LoadSample::default()));
        lb.clean(Some(&TargetId::Int(42))); // absent: nothing to do
    }
}
