//! The balancer: a target list, one algorithm, and the in-flight counts of its picks.

use std::collections::{HashMap, HashSet};
use std::fmt;

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

use crate::algorithm::{Change, Strategy};
use crate::set::{Entry, Request, TargetSet};
use crate::target::weight_is_valid;
use crate::{Algorithm, Error, Key, Pick, PickContext, Target, TargetId};

/// The last load figures of a target, given to [`LoadBalancer::refresh_params`].
///
/// `cpu` is a percentage (100 = one core busy), `memory` the resident set size in bytes. `None`
/// means unknown. A cpu figure that is NaN, negative or infinite is stored as unknown.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct LoadSample {
    /// CPU use in percent of one core; `None` if unknown.
    pub cpu: Option<f64>,
    /// Resident memory in bytes; `None` if unknown.
    pub memory: Option<u64>,
}

impl LoadSample {
    /// A sample with both figures known.
    #[must_use]
    pub fn new(cpu: f64, memory: u64) -> Self {
        Self {
            cpu: Some(cpu),
            memory: Some(memory),
        }
        .sanitized()
    }

    /// A sample with only the memory figure known.
    #[must_use]
    pub fn memory(memory: u64) -> Self {
        Self {
            cpu: None,
            memory: Some(memory),
        }
    }

    /// A sample with only the cpu figure known.
    #[must_use]
    pub fn cpu(cpu: f64) -> Self {
        Self {
            cpu: Some(cpu),
            memory: None,
        }
        .sanitized()
    }

    fn sanitized(mut self) -> Self {
        self.cpu = self.cpu.filter(|c| c.is_finite() && *c >= 0.0);
        self
    }
}

/// A partial change to one target, for [`LoadBalancer::update_params`]. Fields left unset keep
/// their value.
///
/// ```
/// use offload_balance::ParamsUpdate;
///
/// let update = ParamsUpdate::new().weight(2.0).capacity(Some(4));
/// # let _ = update;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ParamsUpdate {
    weight: Option<f64>,
    capacity: Option<Option<u64>>,
    load: Option<LoadSample>,
}

impl ParamsUpdate {
    /// Changes nothing.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the weight (validated like a new target's).
    #[must_use]
    pub fn weight(mut self, weight: f64) -> Self {
        self.weight = Some(weight);
        self
    }

    /// Sets the capacity (`None` is unlimited). Lowering it below the current in-flight count
    /// cancels nothing: the target is just not picked until enough picks are dropped.
    #[must_use]
    pub fn capacity(mut self, capacity: Option<u64>) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Replaces the load figures, as [`LoadBalancer::refresh_params`] does.
    #[must_use]
    pub fn load(mut self, load: LoadSample) -> Self {
        self.load = Some(load);
        self
    }
}

/// Picks targets with one [`Algorithm`] and counts each target's in-flight picks.
///
/// A pick returns a [`Pick`] guard holding one unit of its target's in-flight count until it is
/// dropped. Every algorithm picks only *eligible* targets: those passing the
/// [`PickContext`]'s filter whose in-flight count is below their capacity. A pick with no
/// eligible target (including an empty list) returns `None`; it never panics.
///
/// The methods take `&mut self`: keep the balancer in one owner (a pool's task). The picks are
/// `Send + 'static` and may be dropped anywhere.
///
/// `R` is the random generator of the randomized algorithms; [`new`](LoadBalancer::new) seeds a
/// [`SmallRng`] from the OS, [`from_rng`](LoadBalancer::from_rng) takes any generator, e.g. a
/// seeded one for deterministic tests.
///
/// # Errors
///
/// Configuration methods reject a duplicate id ([`Error::DuplicateId`]) and a weight that is
/// negative, NaN, infinite or above [`Target::MAX_WEIGHT`] ([`Error::InvalidWeight`]); a
/// rejected call changes nothing.
pub struct LoadBalancer<R = SmallRng> {
    set: TargetSet,
    algorithm: Algorithm,
    strategy: Box<dyn Strategy>,
    rng: R,
}

impl LoadBalancer<SmallRng> {
    /// A balancer over `targets` (in this order) using `algorithm`, with a random generator
    /// seeded from the operating system.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateId`] or [`Error::InvalidWeight`] for a bad target list.
    pub fn new(
        targets: impl IntoIterator<Item = Target>,
        algorithm: Algorithm,
    ) -> Result<Self, Error> {
        Self::from_rng(targets, algorithm, SmallRng::from_os_rng())
    }
}

impl<R: RngCore> LoadBalancer<R> {
    /// A balancer over `targets` (in this order) using `algorithm` and the random generator
    /// `rng`: with a seeded generator every pick sequence is reproducible.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateId`] or [`Error::InvalidWeight`] for a bad target list.
    pub fn from_rng(
        targets: impl IntoIterator<Item = Target>,
        algorithm: Algorithm,
        rng: R,
    ) -> Result<Self, Error> {
        let mut lb = Self {
            set: TargetSet::default(),
            algorithm,
            strategy: algorithm.strategy(),
            rng,
        };
        lb.set_targets(targets)?;
        Ok(lb)
    }

    /// Picks one eligible target with the current algorithm, or `None` if no target is
    /// eligible. The pick counts as in flight on its target until the returned [`Pick`] is
    /// dropped.
    ///
    /// Emits a `tracing` TRACE event with the algorithm and the chosen id (or none).
    pub fn pick_one(&mut self, ctx: &PickContext<'_>) -> Option<Pick> {
        self.pick_excluding(ctx, &[])
    }

    /// Up to `n` picks of **distinct** targets, in pick order: each pick is made with the
    /// current algorithm among the eligible targets not picked yet by this call, and it stops
    /// early when none is left. So the result has `min(n, eligible targets)` picks, fewer only
    /// when an algorithm declines (`specify` yields at most one). Each is a full pick: it counts
    /// as in flight and advances the algorithm's rotation.
    pub fn pick_multi(&mut self, n: usize, ctx: &PickContext<'_>) -> Vec<Pick> {
        let mut chosen: Vec<usize> = Vec::with_capacity(n.min(self.set.len()));
        let mut picks = Vec::with_capacity(chosen.capacity());
        while chosen.len() < n {
            let Some(i) = self.pick_index(ctx, &chosen) else {
                break;
            };
            chosen.push(i);
            picks.push(Pick::new(&self.set.entry(i).slot));
        }
        picks
    }

    fn pick_excluding(&mut self, ctx: &PickContext<'_>, exclude: &[usize]) -> Option<Pick> {
        let i = self.pick_index(ctx, exclude)?;
        Some(Pick::new(&self.set.entry(i).slot))
    }

    fn pick_index(&mut self, ctx: &PickContext<'_>, exclude: &[usize]) -> Option<usize> {
        let req = Request {
            key: ctx.key(),
            filter: ctx.filter(),
            exclude,
        };
        let picked = self.strategy.pick(&self.set, &req, &mut self.rng);
        match picked {
            Some(i) => {
                debug_assert!(
                    req.eligible(&self.set, i),
                    "{} picked an ineligible target",
                    self.algorithm
                );
                tracing::trace!(algorithm = self.algorithm.name(), target = %self.set.entry(i).id(), "picked");
            }
            None => {
                tracing::trace!(
                    algorithm = self.algorithm.name(),
                    targets = self.set.len(),
                    "no eligible target"
                );
            }
        }
        picked
    }

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

    /// Switches to `algorithm` with fresh state (rotations restart), even if it is the same.
    /// Parse a name with [`str::parse`]: an unknown name is [`Error::UnknownAlgorithm`].
    pub fn set_algorithm(&mut self, algorithm: Algorithm) {
        self.algorithm = algorithm;
        self.strategy = algorithm.strategy();
    }

    /// The current algorithm.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

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

impl<R> LoadBalancer<R> {
    /// The number of targets.
    #[must_use]
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether there is no target.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.set.len() == 0
    }

    /// Whether a target has this id.
    #[must_use]
    pub fn contains(&self, id: &TargetId) -> bool {
        self.set.find(id.as_key()).is_some()
    }

    /// The targets, in list order.
    pub fn targets(&self) -> impl ExactSizeIterator<Item = &Target> + '_ {
        self.set.entries().iter().map(|e| &e.target)
    }

    /// The target with this id.
    #[must_use]
    pub fn get(&self, id: &TargetId) -> Option<&Target> {
        self.find(id.as_key()).map(|e| &e.target)
    }

    /// The number of outstanding picks of this target, or `None` if absent.
    #[must_use]
    pub fn in_flight(&self, id: &TargetId) -> Option<u64> {
        self.find(id.as_key()).map(Entry::in_flight)
    }

    /// Whether this target is below its capacity (always, without one), or `None` if absent.
    #[must_use]
    pub fn has_room(&self, id: &TargetId) -> Option<bool> {
        self.find(id.as_key()).map(Entry::has_room)
    }

    /// The load figures of this target, or `None` if absent.
    #[must_use]
    pub fn load(&self, id: &TargetId) -> Option<LoadSample> {
        self.find(id.as_key()).map(|e| e.load)
    }

    fn find(&self, key: Key<'_>) -> Option<&Entry> {
        self.set.find(key).map(|i| self.set.entry(i))
    }
}

impl<R> fmt::Debug for LoadBalancer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadBalancer")
            .field("algorithm", &self.algorithm)
            .field("targets", &self.set.entries())
            .finish_non_exhaustive()
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
    use super::*;

    fn seeded(targets: Vec<Target>, algorithm: Algorithm) -> LoadBalancer {
        LoadBalancer::from_rng(targets, algorithm, SmallRng::seed_from_u64(3)).unwrap()
    }

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
    fn guards_count_in_flight_and_survive_removal() {
        let mut lb = seeded(vec![Target::new(1), Target::new(2)], Algorithm::First);
        let a = lb.pick_one(&PickContext::new()).unwrap();
        let b = lb.pick_one(&PickContext::new()).unwrap();
        assert_eq!(lb.in_flight(&TargetId::Int(1)), Some(2));
        drop(a);
        assert_eq!(lb.in_flight(&TargetId::Int(1)), Some(1));
        assert_eq!(lb.del(&TargetId::Int(1)).unwrap().id, TargetId::Int(1));
        assert_eq!(lb.in_flight(&TargetId::Int(1)), None);
        lb.add(Target::new(1)).unwrap();
        assert_eq!(
            lb.in_flight(&TargetId::Int(1)),
            Some(0),
            "a re-added id starts afresh"
        );
        drop(b); // decrements the detached counter only
        assert_eq!(lb.in_flight(&TargetId::Int(1)), Some(0));
        let c = lb.pick_one(&PickContext::new()).unwrap();
        lb.wipe();
        assert!(lb.is_empty());
        assert!(lb.pick_one(&PickContext::new()).is_none());
        drop(c);
        drop(lb);
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

    #[test]
    fn pick_multi_returns_distinct_targets() {
        for &alg in Algorithm::ALL {
            let mut lb = seeded((0..5).map(Target::new).collect(), alg);
            let ctx = PickContext::new().with_key(3);
            let picks = lb.pick_multi(3, &ctx);
            let expected = if alg == Algorithm::Specify { 1 } else { 3 };
            assert_eq!(picks.len(), expected, "{alg}");
            let all = lb.pick_multi(9, &ctx);
            let mut ids: Vec<_> = all.iter().map(|p| p.id().clone()).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), all.len(), "{alg}: distinct");
            assert_eq!(
                all.len(),
                if alg == Algorithm::Specify { 1 } else { 5 },
                "{alg}"
            );
            assert!(lb.pick_multi(0, &ctx).is_empty());
        }
    }

    #[test]
    fn every_algorithm_handles_zero_weights_and_mid_rotation_removal() {
        for &alg in Algorithm::ALL {
            // All-zero weights: every algorithm still picks, and spreads where it spreads.
            let mut lb = seeded(
                (0..4).map(|i| Target::new(i).with_weight(0.0)).collect(),
                alg,
            );
            let ctx = PickContext::new().with_key(2);
            let held: Vec<Pick> = (0..40).filter_map(|_| lb.pick_one(&ctx)).collect();
            assert_eq!(held.len(), 40, "{alg}: all-zero weights");
            let distinct: HashSet<&TargetId> = held.iter().map(Pick::id).collect();
            let spreads = !matches!(
                alg,
                Algorithm::Specify | Algorithm::First | Algorithm::ConsistentHash
            );
            assert_eq!(
                distinct.len(),
                if spreads { 4 } else { 1 },
                "{alg}: {distinct:?}"
            );
            drop(held);

            // Removal in the middle of a rotation: the removed id never comes back, and the
            // spreading algorithms keep using every remaining target.
            let mut lb = seeded(
                (0..5)
                    .map(|i| Target::new(i).with_weight(f64::from(i % 3)))
                    .collect(),
                alg,
            );
            let mut held: Vec<Pick> = (0..7).filter_map(|_| lb.pick_one(&ctx)).collect();
            lb.del(&TargetId::Int(3)).unwrap();
            held.extend((0..60).filter_map(|_| lb.pick_one(&ctx)));
            let after: HashSet<&TargetId> = held[held.len() - 60..].iter().map(Pick::id).collect();
            assert!(
                !after.contains(&TargetId::Int(3)),
                "{alg}: removed target picked"
            );
            if spreads {
                // Target 0 has weight 0: a backup for the weighted rules.
                let weighted = matches!(
                    alg,
                    Algorithm::Weights
                        | Algorithm::WeightsRandom
                        | Algorithm::WeightsPolling
                        | Algorithm::WeightsMinimumConnection
                );
                assert_eq!(
                    after.len(),
                    if weighted { 3 } else { 4 },
                    "{alg}: {after:?}"
                );
            }
        }
    }

    #[test]
    fn empty_balancer_never_panics() {
        for &alg in Algorithm::ALL {
            let mut lb = seeded(vec![], alg);
            assert!(
                lb.pick_one(&PickContext::new().with_key("k")).is_none(),
                "{alg}"
            );
            assert!(lb.pick_one(&PickContext::new()).is_none(), "{alg}");
            assert!(lb.pick_multi(3, &PickContext::new()).is_empty(), "{alg}");
        }
    }

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

    #[test]
    fn set_algorithm_switches_and_restarts() {
        let mut lb = seeded((0..3).map(Target::new).collect(), Algorithm::Polling);
        let first = |lb: &mut LoadBalancer| lb.pick_one(&PickContext::new()).unwrap().id().clone();
        assert_eq!(first(&mut lb), TargetId::Int(0));
        assert_eq!(first(&mut lb), TargetId::Int(1));
        lb.set_algorithm("polling".parse().unwrap());
        assert_eq!(lb.algorithm(), Algorithm::Polling);
        assert_eq!(first(&mut lb), TargetId::Int(0), "fresh rotation");
    }

    #[test]
    fn seeded_balancers_repeat_their_picks() {
        let run = || {
            let mut lb = seeded((0..10).map(Target::new).collect(), Algorithm::Random);
            (0..50)
                .map(|_| lb.pick_one(&PickContext::new()).unwrap().id().clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn balancer_is_send() {
        fn send<T: Send>() {}
        send::<LoadBalancer>();
    }
}
