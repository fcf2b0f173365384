//! The balancer: a target list, one algorithm, and the in-flight counts of its picks.
//!
//! This file holds the type, its constructors, the picks and the read accessors; the target
//! list's changes are in `balancer/targets.rs`, the per-target parameters (load, weight,
//! capacity) in `balancer/params.rs`.

use std::fmt;

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

use crate::algorithm::Strategy;
use crate::set::{Entry, Request, TargetSet};
use crate::{Algorithm, Error, Key, LoadSample, Pick, PickContext, Target, TargetId};

mod params;
mod targets;

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

/// A balancer with a fixed seed, for tests that must repeat.
#[cfg(test)]
fn seeded(targets: Vec<Target>, algorithm: Algorithm) -> LoadBalancer {
    LoadBalancer::from_rng(targets, algorithm, SmallRng::seed_from_u64(3)).unwrap()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

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
