//! The pluggable pick rules: one tiny trait, [`Strategy`], and one file per implementation.
//!
//! Every rule picks only *eligible* targets (passing the caller's filter, in-flight below
//! capacity, not already chosen by the same `pick_multi`) and returns `None` when there is none.
//! "Ties rotate" means: the scan starts just after the previous pick, and the first best target
//! in that scan order wins, so tied targets take turns.
//!
//! | name | file | rule |
//! |---|---|---|
//! | `polling` | [`polling`] | round robin: the next eligible target after the previous pick, in list order |
//! | `random` | [`random`] | uniform among eligible targets |
//! | `weights`, `weightsRandom` | [`weights_random`] | random, `P(i) = w_i / Σ w` over eligible targets (cumulative weights + binary search) |
//! | `weightsPolling` | [`weights_polling`] | nginx's smooth weighted round robin: each eligible `c_i += w_i`, the largest `c_i` (first on ties) wins and loses `Σ w` |
//! | `specify` | [`specify`] | the target whose id equals the key, if eligible; else `None` |
//! | `minimumConnection` | [`minimum_connection`] | fewest in-flight; ties rotate |
//! | `weightsMinimumConnection` | [`weights_minimum_connection`] | lowest `(in_flight + 1) / w`; ties rotate |
//! | `p2c` | [`p2c`] | two distinct uniform candidates, fewer in-flight wins (the first drawn on a tie) |
//! | `consistentHash` | [`consistent_hash`] | the first eligible target clockwise from the key's point on a ring of 128 points per target |
//! | `first` | [`first`] | the lowest-index eligible target |
//! | `leastMemory` | [`least_memory`] | lowest refreshed memory (unknown = 0), then fewest in-flight; ties rotate |
//! | `leastLoad` | [`least_load`] | lowest `in_flight + cpu / 100` (unknown cpu = 0); ties rotate |
//!
//! Weighted rules (`weights`, `weightsRandom`, `weightsPolling`, `weightsMinimumConnection`)
//! treat a zero weight as a *backup*: zero-weight targets are used only when no eligible target
//! has a positive weight, and then as if they all had weight 1. The other rules ignore weights.

use std::fmt;
use std::str::FromStr;

use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::set::{Request, TargetSet};
use crate::Error;

pub(crate) mod consistent_hash;
pub(crate) mod first;
pub(crate) mod least_load;
pub(crate) mod least_memory;
pub(crate) mod minimum_connection;
pub(crate) mod p2c;
pub(crate) mod polling;
pub(crate) mod random;
pub(crate) mod specify;
pub(crate) mod weights_minimum_connection;
pub(crate) mod weights_polling;
pub(crate) mod weights_random;

/// A load-balancing algorithm, named exactly as the seed spells it (`polling`, `weights`, …).
///
/// `Display`, `FromStr` and serde all use these names; an unknown name is
/// [`Error::UnknownAlgorithm`]. The default is [`Polling`](Algorithm::Polling).
///
/// Every algorithm picks only eligible targets (see [`PickContext`](crate::PickContext)) and
/// returns `None` when none is eligible. "Ties rotate" means the scan starts just after the
/// previous pick, so tied targets take turns.
///
/// ```
/// use offload_balance::Algorithm;
///
/// let a: Algorithm = "weightsPolling".parse().unwrap();
/// assert_eq!(a, Algorithm::WeightsPolling);
/// assert_eq!(a.to_string(), "weightsPolling");
/// assert!("roundRobin".parse::<Algorithm>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
#[non_exhaustive]
pub enum Algorithm {
    /// `polling`: round robin, the next eligible target after the previous pick, in list order.
    #[default]
    Polling,
    /// `weights`: random, each eligible target with probability `w_i / Σ w`. Same rule as
    /// [`WeightsRandom`](Algorithm::WeightsRandom). Zero weights are backups.
    Weights,
    /// `random`: uniform among eligible targets; weights are ignored.
    Random,
    /// `specify`: the target whose id equals the context's key (`Int(5)` never equals
    /// `Str("5")`), if eligible; `None` when the key is missing, absent or ineligible.
    Specify,
    /// `weightsPolling`: nginx's smooth weighted round robin. Each pick adds `w_i` to every
    /// eligible target's current weight `c_i`, picks the largest `c_i` (the first in list order
    /// on a tie) and subtracts `Σ w` from it. With integer weights and a fixed eligible set,
    /// every window of `Σ w` consecutive picks holds each target exactly `w_i` times,
    /// interleaved. Adding, removing or reweighting a target restarts the rotation (all `c_i`
    /// reset to 0). Zero weights are backups.
    WeightsPolling,
    /// `weightsRandom`: random, each eligible target with probability `w_i / Σ w`, for any
    /// non-negative real weights. Zero weights are backups.
    WeightsRandom,
    /// `minimumConnection`: the eligible target with the fewest in-flight picks; ties rotate.
    MinimumConnection,
    /// `weightsMinimumConnection`: the eligible target with the lowest `(in_flight + 1) / w`
    /// (the load it would carry per unit of weight after this pick); ties rotate. Zero weights
    /// are backups.
    WeightsMinimumConnection,
    /// `p2c`: power of two choices. Two distinct eligible targets drawn uniformly; the one with
    /// fewer in-flight picks wins, the first drawn on a tie. A single eligible target is picked.
    P2c,
    /// `consistentHash`: the context's key is hashed onto a ring holding 128 points per target;
    /// the first eligible target clockwise wins. Removing a target moves only its own keys (to
    /// the next targets clockwise); adding one moves only the keys of the arcs it takes, all to
    /// itself; so a key stays on its target while the target exists, unless a newly added
    /// target takes it. An ineligible target's keys spill to the next eligible target
    /// clockwise. Without a key, uniform like [`Random`](Algorithm::Random). Weights are
    /// ignored.
    ConsistentHash,
    /// `first`: the lowest-index eligible target (HAProxy's `first`): fills targets in list
    /// order so the later ones idle and can be retired.
    First,
    /// `leastMemory`: the lowest refreshed memory (RSS bytes); a target without a figure counts
    /// as 0 bytes (a fresh process is small). Ties go to fewer in-flight picks, then rotate.
    LeastMemory,
    /// `leastLoad`: the lowest `in_flight + cpu / 100` (each in-flight pick counts 1, each 100 %
    /// of cpu counts 1); a target without a cpu figure counts 0 %. Ties rotate.
    LeastLoad,
}

/// All names, in [`Algorithm::ALL`] order, for error messages.
pub(crate) const NAMES_JOINED: &str = "polling, weights, random, specify, weightsPolling, \
    weightsRandom, minimumConnection, weightsMinimumConnection, p2c, consistentHash, first, \
    leastMemory, leastLoad";

impl Algorithm {
    /// Every algorithm, the seed's eight first, in the seed's order.
    pub const ALL: &'static [Algorithm] = &[
        Algorithm::Polling,
        Algorithm::Weights,
        Algorithm::Random,
        Algorithm::Specify,
        Algorithm::WeightsPolling,
        Algorithm::WeightsRandom,
        Algorithm::MinimumConnection,
        Algorithm::WeightsMinimumConnection,
        Algorithm::P2c,
        Algorithm::ConsistentHash,
        Algorithm::First,
        Algorithm::LeastMemory,
        Algorithm::LeastLoad,
    ];

    /// The name as the seed spells it, e.g. `"weightsMinimumConnection"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Polling => "polling",
            Algorithm::Weights => "weights",
            Algorithm::Random => "random",
            Algorithm::Specify => "specify",
            Algorithm::WeightsPolling => "weightsPolling",
            Algorithm::WeightsRandom => "weightsRandom",
            Algorithm::MinimumConnection => "minimumConnection",
            Algorithm::WeightsMinimumConnection => "weightsMinimumConnection",
            Algorithm::P2c => "p2c",
            Algorithm::ConsistentHash => "consistentHash",
            Algorithm::First => "first",
            Algorithm::LeastMemory => "leastMemory",
            Algorithm::LeastLoad => "leastLoad",
        }
    }

    /// A fresh strategy for this algorithm, with no rotation state.
    pub(crate) fn strategy(self) -> Box<dyn Strategy> {
        match self {
            Algorithm::Polling => Box::<polling::Polling>::default(),
            Algorithm::Weights | Algorithm::WeightsRandom => {
                Box::<weights_random::WeightedRandom>::default()
            }
            Algorithm::Random => Box::new(random::Random),
            Algorithm::Specify => Box::new(specify::Specify),
            Algorithm::WeightsPolling => Box::<weights_polling::SmoothWeighted>::default(),
            Algorithm::MinimumConnection => Box::<minimum_connection::MinimumConnection>::default(),
            Algorithm::WeightsMinimumConnection => {
                Box::<weights_minimum_connection::WeightedMinimumConnection>::default()
            }
            Algorithm::P2c => Box::<p2c::PowerOfTwo>::default(),
            Algorithm::ConsistentHash => Box::<consistent_hash::ConsistentHash>::default(),
            Algorithm::First => Box::new(first::First),
            Algorithm::LeastMemory => Box::<least_memory::LeastMemory>::default(),
            Algorithm::LeastLoad => Box::<least_load::LeastLoad>::default(),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    /// Parses the exact, case-sensitive name; anything else is [`Error::UnknownAlgorithm`].
    fn from_str(s: &str) -> Result<Self, Error> {
        Algorithm::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or_else(|| Error::UnknownAlgorithm { name: s.to_owned() })
    }
}

impl TryFrom<String> for Algorithm {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl From<Algorithm> for &'static str {
    fn from(a: Algorithm) -> Self {
        a.name()
    }
}

/// How the target list changed, so a strategy can keep or drop its derived state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// A target was appended.
    Added,
    /// The target at this index was removed; later targets moved down by one.
    Removed(usize),
    /// A weight changed.
    Reweighted,
    /// The whole list was replaced (or wiped).
    Replaced,
}

/// One pick rule. `pick` returns the index of an eligible target, or `None`.
pub(crate) trait Strategy: fmt::Debug + Send + Sync {
    /// Picks an eligible target. Must not return an ineligible index.
    fn pick(&mut self, set: &TargetSet, req: &Request<'_>, rng: &mut dyn RngCore) -> Option<usize>;

    /// Called after every change to the target list or its weights.
    fn changed(&mut self, _set: &TargetSet, _change: Change) {}
}

/// A round-robin position: the index where the next scan starts.
#[derive(Debug, Default, Clone)]
pub(crate) struct Cursor {
    next: usize,
}

impl Cursor {
    /// Where a scan over `n` targets starts.
    #[inline]
    pub(crate) fn start(&self, n: usize) -> usize {
        if self.next >= n {
            0
        } else {
            self.next
        }
    }

    /// Records a pick at `i`: the next scan starts just after it.
    #[inline]
    pub(crate) fn picked(&mut self, i: usize) {
        self.next = i + 1;
    }

    /// The rule "lowest key wins, ties rotate": scans the eligible targets once from the
    /// rotation point, keeps the first lowest `key`, stops early at a key equal to `floor`
    /// (nothing can beat it), and records the pick.
    pub(crate) fn pick_lowest<K: PartialOrd + Copy>(
        &mut self,
        set: &TargetSet,
        req: &Request<'_>,
        floor: Option<K>,
        key: impl Fn(&crate::set::Entry) -> K,
    ) -> Option<usize> {
        let n = set.len();
        let mut best: Option<(usize, K)> = None;
        for i in scan(self.start(n), n) {
            if !req.eligible(set, i) {
                continue;
            }
            let k = key(set.entry(i));
            if best.is_none_or(|(_, b)| k < b) {
                best = Some((i, k));
                if floor.is_some_and(|f| k <= f) {
                    break;
                }
            }
        }
        let (i, _) = best?;
        self.picked(i);
        Some(i)
    }

    /// Keeps the rotation in place across a change: removing a target before the cursor moves
    /// the cursor down with the targets, so no target is skipped or repeated.
    pub(crate) fn changed(&mut self, change: Change) {
        match change {
            Change::Removed(i) if i < self.next => self.next -= 1,
            Change::Replaced => self.next = 0,
            _ => {}
        }
    }
}

/// Indices `start..n` then `0..start`.
#[inline]
pub(crate) fn scan(start: usize, n: usize) -> impl Iterator<Item = usize> {
    (start..n).chain(0..start)
}

/// A uniform eligible index: up to four uniform draws over all targets, then an exact draw among
/// the eligible ones. Exactly uniform over eligible targets either way.
pub(crate) fn uniform(set: &TargetSet, req: &Request<'_>, rng: &mut dyn RngCore) -> Option<usize> {
    let n = set.len();
    if n == 0 {
        return None;
    }
    for _ in 0..4 {
        let i = rng.random_range(0..n);
        if req.eligible(set, i) {
            return Some(i);
        }
    }
    let m = (0..n).filter(|&i| req.eligible(set, i)).count();
    if m == 0 {
        return None;
    }
    let k = rng.random_range(0..m);
    (0..n).filter(|&i| req.eligible(set, i)).nth(k)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the per-algorithm unit tests.

    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    use crate::{Algorithm, LoadBalancer, Pick, PickContext, Target, TargetId};

    /// A seeded balancer over targets `0..weights.len()` with these weights.
    pub(crate) fn lb(algorithm: Algorithm, weights: &[f64]) -> LoadBalancer<SmallRng> {
        let targets = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Target::new(i as i64).with_weight(w));
        LoadBalancer::from_rng(targets, algorithm, SmallRng::seed_from_u64(7)).unwrap()
    }

    /// The integer id of a pick.
    pub(crate) fn int(p: &Pick) -> i64 {
        match p.id() {
            TargetId::Int(i) => *i,
            other => panic!("unexpected id {other}"),
        }
    }

    /// `n` picks, each dropped at once; the ids picked.
    pub(crate) fn ids(lb: &mut LoadBalancer<SmallRng>, n: usize) -> Vec<i64> {
        (0..n)
            .map(|_| int(&lb.pick_one(&PickContext::new()).expect("a pick")))
            .collect()
    }

    /// `n` picks, all held; the ids picked and the guards.
    pub(crate) fn hold(lb: &mut LoadBalancer<SmallRng>, n: usize) -> (Vec<i64>, Vec<Pick>) {
        let picks: Vec<Pick> = (0..n)
            .map(|_| lb.pick_one(&PickContext::new()).expect("a pick"))
            .collect();
        (picks.iter().map(int).collect(), picks)
    }

    /// How often each of `0..n` appears.
    pub(crate) fn counts(ids: &[i64], n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for &i in ids {
            c[i as usize] += 1;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_seed() {
        let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        assert_eq!(names.join(", "), NAMES_JOINED);
        assert_eq!(
            &names[..8],
            [
                "polling",
                "weights",
                "random",
                "specify",
                "weightsPolling",
                "weightsRandom",
                "minimumConnection",
                "weightsMinimumConnection"
            ]
        );
        for &a in Algorithm::ALL {
            assert_eq!(a.name().parse::<Algorithm>().unwrap(), a);
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.name()));
            assert_eq!(serde_json::from_str::<Algorithm>(&json).unwrap(), a);
        }
    }

    #[test]
    fn unknown_names_are_typed_errors() {
        for bad in ["", "Polling", "round_robin", "weights_polling", "p2C"] {
            assert_eq!(
                bad.parse::<Algorithm>(),
                Err(Error::UnknownAlgorithm { name: bad.into() })
            );
        }
        let err = serde_json::from_str::<Algorithm>("\"leastConn\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown load-balancing algorithm `leastConn`"),
            "{err}"
        );
        assert!(serde_json::from_str::<Algorithm>("3").is_err());
    }

    #[test]
    fn cursor_follows_removals() {
        let mut c = Cursor::default();
        c.picked(1); // next = 2
        c.changed(Change::Removed(0)); // everything shifts down
        assert_eq!(c.start(5), 1);
        c.changed(Change::Removed(1)); // the one that was next: the following one is next now
        assert_eq!(c.start(5), 1);
        c.changed(Change::Removed(3));
        assert_eq!(c.start(5), 1);
        assert_eq!(c.start(1), 0, "past the end wraps to 0");
        c.changed(Change::Replaced);
        assert_eq!(c.start(5), 0);
    }

    #[test]
    fn scan_visits_every_index_once() {
        assert_eq!(scan(2, 5).collect::<Vec<_>>(), [2, 3, 4, 0, 1]);
        assert_eq!(scan(0, 3).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(scan(0, 0).count(), 0);
    }
}
