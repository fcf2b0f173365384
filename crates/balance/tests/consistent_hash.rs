//! `consistentHash` moves keys minimally: adding a target moves keys only to it, removing one
//! moves only its keys, and adding then removing a target restores every key's target.
//! Balance across targets is checked in the unit tests.

use offload_balance::{Algorithm, LoadBalancer, PickContext, Target, TargetId};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config() -> Config {
    Config {
        cases: 48,
        rng_seed: RngSeed::Fixed(0x00c0_4a54),
        failure_persistence: None,
        ..Config::default()
    }
}

const KEYS: usize = 600;

fn id() -> impl Strategy<Value = TargetId> {
    prop_oneof![
        (0_i64..1_000).prop_map(TargetId::Int),
        "[a-z]{1,6}".prop_map(TargetId::Str),
    ]
}

fn owners(lb: &mut LoadBalancer, keys: &[String]) -> Vec<TargetId> {
    keys.iter()
        .map(|k| {
            lb.pick_one(&PickContext::new().with_key(k.as_str()))
                .unwrap()
                .id()
                .clone()
        })
        .collect()
}

fn owner(lb: &mut LoadBalancer, key: &str) -> TargetId {
    lb.pick_one(&PickContext::new().with_key(key))
        .unwrap()
        .id()
        .clone()
}

fn keys(salt: u32) -> Vec<String> {
    (0..KEYS).map(|k| format!("{salt}/key-{k}")).collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn adding_moves_keys_only_to_the_new_target(
        ids in prop::collection::btree_set(id(), 1..16),
        new in id(),
        salt in any::<u32>(),
    ) {
        prop_assume!(!ids.contains(&new));
        let n = ids.len();
        let mut lb = LoadBalancer::new(ids.into_iter().map(Target::new), Algorithm::ConsistentHash).unwrap();
        let keys = keys(salt);
        let before = owners(&mut lb, &keys);
        lb.add(Target::new(new.clone())).unwrap();
        let after = owners(&mut lb, &keys);
        let mut moved = 0;
        for ((b, a), k) in before.iter().zip(&after).zip(&keys) {
            if b != a {
                prop_assert_eq!(a, &new, "key {} moved from {} to an old target", k, b);
                moved += 1;
            }
        }
        // The new target takes about 1/(n+1) of the keys; far more would not be minimal.
        let fair = KEYS as f64 / (n + 1) as f64;
        prop_assert!((moved as f64) < 2.5 * fair + 30.0, "{} keys moved, fair share {:.0}", moved, fair);
        // And removing it again restores every key's target.
        lb.del(&new).unwrap();
        prop_assert_eq!(owners(&mut lb, &keys), before);
    }

    #[test]
    fn removing_moves_only_the_removed_targets_keys(
        ids in prop::collection::btree_set(id(), 2..16),
        victim in any::<prop::sample::Index>(),
        salt in any::<u32>(),
    ) {
        let ids: Vec<TargetId> = ids.into_iter().collect();
        let gone = ids[victim.index(ids.len())].clone();
        let mut lb = LoadBalancer::new(ids.iter().cloned().map(Target::new), Algorithm::ConsistentHash).unwrap();
        let keys = keys(salt);
        let before = owners(&mut lb, &keys);
        lb.del(&gone).unwrap();
        let after = owners(&mut lb, &keys);
        for ((b, a), k) in before.iter().zip(&after).zip(&keys) {
            if *b == gone {
                prop_assert_ne!(a, &gone);
            } else {
                prop_assert_eq!(a, b, "key {} moved although its target stayed", k);
            }
        }
    }

    #[test]
    fn a_key_moves_only_to_an_added_target(
        ids in prop::collection::btree_set(id(), 1..10),
        key in "[a-z0-9]{1,12}",
        churn in prop::collection::vec(id(), 0..8),
    ) {
        let mut lb = LoadBalancer::new(ids.iter().cloned().map(Target::new), Algorithm::ConsistentHash).unwrap();
        let mut home = owner(&mut lb, &key);
        // Other targets come and go: removing one never moves the key, adding one moves it only
        // to the added target.
        for other in churn {
            if other == home {
                continue;
            }
            if lb.contains(&other) {
                lb.del(&other);
                prop_assert_eq!(&owner(&mut lb, &key), &home);
            } else {
                lb.add(Target::new(other.clone())).unwrap();
                let now = owner(&mut lb, &key);
                prop_assert!(now == home || now == other, "moved from {} to {}, added {}", home, now, other);
                home = now;
            }
        }
    }
}
