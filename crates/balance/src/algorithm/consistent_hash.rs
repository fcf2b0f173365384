//! `consistentHash`: a hash ring (Karger et al.; nginx's `hash … consistent`).
//!
//! Rule: every target owns [`POINTS`] points on a 64-bit ring, at `point(hash(id), r)` for
//! `r < POINTS`; a key is hashed onto the ring, and the first eligible target found walking
//! clockwise from it (wrapping) wins. So:
//!
//! * removing a target moves only its own keys, each to the next target clockwise;
//! * adding a target moves only the keys of the arcs it takes, all of them to the new target;
//!   so a key stays on its target while that target exists, unless a new target takes it;
//! * an ineligible (full, filtered) target hands its keys to the next targets clockwise, which
//!   with capacities set gives the bounded-load variant (Mirrokni et al.) with the pool's
//!   capacity as the bound; `pick_multi` returns the key's target then its successors, i.e. the
//!   key's replicas.
//!
//! Positions depend on ids only (a fixed FNV-1a + murmur3 finalizer hash, the same on every run
//! and platform), never on insertion order. `Key::Int(5)` and `Key::Str("5")` hash differently.
//! Without a key the pick is uniform, like `random`. Weights are ignored. The ring is rebuilt
//! lazily after a change (O(P log P), `P = 128 n`); a pick is a binary search, O(log n), plus
//! the walk past ineligible targets.

use rand::RngCore;

use super::{uniform, Change, Strategy};
use crate::set::{Request, TargetSet};
use crate::Key;

/// Ring points per target. 128 keeps each target's share of keys within roughly ±20 % of fair
/// at small target counts, and the ring at 2 MiB for 1,024 targets.
pub(crate) const POINTS: u32 = 128;

#[derive(Debug, Default)]
pub(crate) struct ConsistentHash {
    /// `(position, target index)`, sorted by position.
    ring: Vec<(u64, u32)>,
    stale: bool,
    /// Per target: the pick (by `generation`) in which it was found ineligible.
    rejected: Vec<u32>,
    generation: u32,
}

/// FNV-1a over the key's kind tag and bytes, then murmur3's 64-bit finalizer.
pub(crate) fn hash_key(key: Key<'_>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    };
    match key {
        Key::Int(i) => {
            eat(&[0]);
            eat(&i.to_le_bytes());
        }
        Key::Str(s) => {
            eat(&[1]);
            eat(s.as_bytes());
        }
    }
    fmix64(h)
}

/// The `r`-th ring point of a target whose id hashes to `h`.
fn point(h: u64, r: u32) -> u64 {
    fmix64(h ^ u64::from(r + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

impl ConsistentHash {
    fn rebuild(&mut self, set: &TargetSet) {
        self.ring.clear();
        self.ring.reserve(set.len() * POINTS as usize);
        for (i, e) in set.entries().iter().enumerate() {
            let h = hash_key(e.id().as_key());
            let i = u32::try_from(i).expect("fewer than 2^32 targets");
            self.ring.extend((0..POINTS).map(|r| (point(h, r), i)));
        }
        // Ties (a 64-bit collision) break by id hash order via index only when ids collide too;
        // sorting by position then index keeps the ring deterministic.
        self.ring.sort_unstable();
        self.rejected.clear();
        self.rejected.resize(set.len(), 0);
        self.generation = 0;
        self.stale = false;
    }
}

impl Strategy for ConsistentHash {
    fn pick(&mut self, set: &TargetSet, req: &Request<'_>, rng: &mut dyn RngCore) -> Option<usize> {
        let Some(key) = req.key else {
            return uniform(set, req, rng);
        };
        if self.stale || self.rejected.len() != set.len() {
            self.rebuild(set);
        }
        let len = self.ring.len();
        if len == 0 {
            return None;
        }
        let h = hash_key(key);
        let start = self.ring.partition_point(|&(p, _)| p < h);
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.rejected.fill(0);
            self.generation = 1;
        }
        let mut rejected = 0;
        for k in 0..len {
            let (_, i) = self.ring[(start + k) % len];
            let i = i as usize;
            if self.rejected[i] == self.generation {
                continue;
            }
            if req.eligible(set, i) {
                return Some(i);
            }
            self.rejected[i] = self.generation;
            rejected += 1;
            if rejected == set.len() {
                break;
            }
        }
        None
    }

    fn changed(&mut self, _set: &TargetSet, _change: Change) {
        self.stale = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::{counts, int};
    use crate::{Algorithm, LoadBalancer, PickContext, Target, TargetId};

    fn lb(ids: impl IntoIterator<Item = i64>) -> LoadBalancer {
        LoadBalancer::new(ids.into_iter().map(Target::new), Algorithm::ConsistentHash).unwrap()
    }

    fn owner(lb: &mut LoadBalancer, key: &str) -> i64 {
        int(&lb.pick_one(&PickContext::new().with_key(key)).unwrap())
    }

    #[test]
    fn hash_is_pinned_and_kind_tagged() {
        // Ring positions must not change between runs, platforms or releases.
        assert_eq!(hash_key(Key::Int(0)), 0xf51e_c3da_bc2c_4015);
        assert_eq!(hash_key(Key::Str("abc")), 0x5f6f_d107_17e0_95c5);
        assert_eq!(point(hash_key(Key::Int(7)), 3), 0xa7b2_5eb5_a453_8b7a);
        assert_ne!(hash_key(Key::Int(5)), hash_key(Key::Str("5")));
    }

    #[test]
    fn same_key_same_target_regardless_of_order() {
        let mut a = lb(0..10);
        let mut b = lb((0..10).rev());
        for k in 0..200 {
            let key = format!("job-{k}");
            let first = owner(&mut a, &key);
            assert_eq!(owner(&mut a, &key), first);
            assert_eq!(
                owner(&mut b, &key),
                first,
                "positions depend on ids, not order"
            );
        }
    }

    #[test]
    fn add_and_remove_move_only_the_affected_keys() {
        let mut lb = lb(0..5);
        let keys: Vec<String> = (0..2_000).map(|k| format!("k{k}")).collect();
        let before: Vec<i64> = keys.iter().map(|k| owner(&mut lb, k)).collect();
        lb.add(Target::new(5)).unwrap();
        let after: Vec<i64> = keys.iter().map(|k| owner(&mut lb, k)).collect();
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        assert!(before.iter().zip(&after).all(|(b, a)| b == a || *a == 5));
        assert!(
            (200..=500).contains(&moved),
            "~1/6 of 2000 should move, {moved} did"
        );
        lb.del(&TargetId::Int(2)).unwrap();
        let last: Vec<i64> = keys.iter().map(|k| owner(&mut lb, k)).collect();
        for ((b, a), k) in after.iter().zip(&last).zip(&keys) {
            if *b != 2 {
                assert_eq!(b, a, "key {k} moved although its target stayed");
            } else {
                assert_ne!(*a, 2);
            }
        }
    }

    #[test]
    fn keys_spread_roughly_evenly() {
        let mut lb = lb(0..8);
        let got: Vec<i64> = (0..16_000)
            .map(|k| owner(&mut lb, &format!("user:{k}")))
            .collect();
        for c in counts(&got, 8) {
            assert!((1_400..=2_600).contains(&c), "{c} of 16000 over 8 targets");
        }
    }

    #[test]
    fn ineligible_owner_spills_clockwise_and_pick_multi_gives_replicas() {
        let mut lb = lb(0..6);
        let key = "session-1";
        let home = owner(&mut lb, key);
        let replicas: Vec<i64> = lb
            .pick_multi(3, &PickContext::new().with_key(key))
            .iter()
            .map(int)
            .collect();
        assert_eq!(replicas.len(), 3);
        assert_eq!(replicas[0], home);
        let not_home = |id: &TargetId| *id != TargetId::Int(home);
        let spill = int(&lb
            .pick_one(&PickContext::new().with_key(key).with_filter(&not_home))
            .unwrap());
        assert_eq!(spill, replicas[1], "the next target clockwise takes over");
        let none = |_: &TargetId| false;
        assert!(lb
            .pick_one(&PickContext::new().with_key(key).with_filter(&none))
            .is_none());
        assert_eq!(
            lb.pick_multi(10, &PickContext::new().with_key(key)).len(),
            6
        );
    }

    #[test]
    fn without_key_uniform_and_empty_none() {
        let mut lb = lb(0..4);
        assert!(lb.pick_one(&PickContext::new()).is_some());
        let mut lb = lb_empty();
        assert!(lb.pick_one(&PickContext::new().with_key("k")).is_none());
        assert!(lb.pick_one(&PickContext::new()).is_none());
        fn lb_empty() -> LoadBalancer {
            LoadBalancer::new([], Algorithm::ConsistentHash).unwrap()
        }
    }
}
