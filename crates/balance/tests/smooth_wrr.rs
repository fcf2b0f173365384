//! `weightsPolling` is nginx's smooth weighted round robin, pick for pick.
//!
//! * The sequence equals a straight integer transcription of nginx's
//!   `ngx_http_upstream_get_peer` loop, so it is never burstier than nginx.
//! * With integer weights, every window of `W = Σ w` consecutive picks holds each target exactly
//!   `w_i` times.
//! * Removing a target in the middle of a rotation restarts an exact rotation of the rest; an
//!   unchanged filter gives the exact rotation of the eligible subset; zero weights are backups.

use offload_balance::{Algorithm, LoadBalancer, PickContext, Target, TargetId};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config() -> Config {
    Config {
        cases: 64,
        rng_seed: RngSeed::Fixed(0x0005_77cc),
        failure_persistence: None,
        ..Config::default()
    }
}

/// nginx's loop over integer weights: `ids[i]` has weight `w[i]`.
fn nginx(ids: &[i64], w: &[i64], picks: usize) -> Vec<i64> {
    let total: i64 = w.iter().sum();
    let mut current = vec![0_i64; w.len()];
    (0..picks)
        .map(|_| {
            let mut best = 0;
            for i in 0..w.len() {
                current[i] += w[i];
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            ids[best]
        })
        .collect()
}

fn balancer(w: &[i64]) -> LoadBalancer {
    let targets = w
        .iter()
        .enumerate()
        .map(|(i, &x)| Target::new(i as i64).with_weight(x as f64));
    LoadBalancer::new(targets, Algorithm::WeightsPolling).unwrap()
}

fn picks(lb: &mut LoadBalancer, n: usize, ctx: &PickContext<'_>) -> Vec<i64> {
    (0..n)
        .map(|_| match lb.pick_one(ctx).unwrap().id() {
            TargetId::Int(i) => *i,
            other => panic!("{other}"),
        })
        .collect()
}

/// Every window of `sum(w)` picks holds id `ids[i]` exactly `w[i]` times.
fn assert_windows_exact(seq: &[i64], ids: &[i64], w: &[i64]) -> Result<(), TestCaseError> {
    let total = w.iter().sum::<i64>() as usize;
    for (start, window) in seq.windows(total).enumerate() {
        for (id, &wi) in ids.iter().zip(w) {
            let got = window.iter().filter(|&&x| x == *id).count() as i64;
            prop_assert_eq!(
                got,
                wi,
                "window at {} of {:?}: id {} picked {} times, weight {}",
                start,
                seq,
                id,
                got,
                wi
            );
        }
    }
    Ok(())
}

fn weights(max_len: usize) -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(1_i64..=12, 1..=max_len)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn same_sequence_as_nginx_and_windows_exact(w in weights(8)) {
        let total = w.iter().sum::<i64>() as usize;
        let ids: Vec<i64> = (0..w.len() as i64).collect();
        let mut lb = balancer(&w);
        let got = picks(&mut lb, 3 * total, &PickContext::new());
        prop_assert_eq!(&got, &nginx(&ids, &w, 3 * total));
        assert_windows_exact(&got, &ids, &w)?;
    }

    #[test]
    fn zero_weights_are_backups(w in prop::collection::vec(0_i64..=6, 1..=8)) {
        let positive: Vec<usize> = (0..w.len()).filter(|&i| w[i] > 0).collect();
        let mut lb = balancer(&w);
        if positive.is_empty() {
            // All zero: plain round robin.
            let got = picks(&mut lb, 2 * w.len(), &PickContext::new());
            let expected: Vec<i64> = (0..2 * w.len()).map(|k| (k % w.len()) as i64).collect();
            prop_assert_eq!(got, expected);
        } else {
            let ids: Vec<i64> = positive.iter().map(|&i| i as i64).collect();
            let pw: Vec<i64> = positive.iter().map(|&i| w[i]).collect();
            let total = pw.iter().sum::<i64>() as usize;
            let got = picks(&mut lb, 2 * total, &PickContext::new());
            prop_assert_eq!(got, nginx(&ids, &pw, 2 * total));
        }
    }

    #[test]
    fn removal_mid_rotation_restarts_exactly(w in weights(8), cut in 0_usize..50, victim in any::<prop::sample::Index>()) {
        prop_assume!(w.len() >= 2);
        let mut lb = balancer(&w);
        let _ = picks(&mut lb, cut, &PickContext::new());
        let v = victim.index(w.len());
        lb.del(&TargetId::Int(v as i64)).unwrap();
        let ids: Vec<i64> = (0..w.len() as i64).filter(|&i| i != v as i64).collect();
        let rest: Vec<i64> = ids.iter().map(|&i| w[i as usize]).collect();
        let total = rest.iter().sum::<i64>() as usize;
        let got = picks(&mut lb, 2 * total, &PickContext::new());
        prop_assert_eq!(&got, &nginx(&ids, &rest, 2 * total));
        assert_windows_exact(&got, &ids, &rest)?;
    }

    #[test]
    fn a_fixed_filter_rotates_the_eligible_subset(w in weights(8), mask in prop::collection::vec(any::<bool>(), 8)) {
        let ids: Vec<i64> = (0..w.len() as i64).filter(|&i| mask[i as usize]).collect();
        prop_assume!(!ids.is_empty());
        let sub: Vec<i64> = ids.iter().map(|&i| w[i as usize]).collect();
        let total = sub.iter().sum::<i64>() as usize;
        let mut lb = balancer(&w);
        let filter = |id: &TargetId| matches!(id, TargetId::Int(i) if mask[*i as usize]);
        let got = picks(&mut lb, 2 * total, &PickContext::new().with_filter(&filter));
        prop_assert_eq!(&got, &nginx(&ids, &sub, 2 * total));
        assert_windows_exact(&got, &ids, &sub)?;
    }

    #[test]
    fn real_weights_keep_long_run_proportions(w in prop::collection::vec(0.1_f64..10.0, 1..6)) {
        let targets = w.iter().enumerate().map(|(i, &x)| Target::new(i as i64).with_weight(x));
        let mut lb = LoadBalancer::new(targets, Algorithm::WeightsPolling).unwrap();
        let n = 5_000;
        let got = picks(&mut lb, n, &PickContext::new());
        let total: f64 = w.iter().sum();
        for (i, &x) in w.iter().enumerate() {
            let count = got.iter().filter(|&&g| g == i as i64).count() as f64;
            let expected = n as f64 * x / total;
            // Deterministic: the lag of smooth WRR stays within a few picks.
            prop_assert!((count - expected).abs() <= w.len() as f64, "target {}: {} vs {:.1}", i, count, expected);
        }
    }
}

#[test]
fn the_window_check_rejects_a_bursty_order() {
    // A plain (non-smooth) weighted round robin, a a a a a b c, has the right counts per period:
    // the comparison with nginx is what rejects its burst.
    let bursty = [0, 0, 0, 0, 0, 1, 2];
    let ids = [0, 1, 2];
    let nginx = nginx(&ids, &[5, 1, 1], 7);
    assert_ne!(bursty.to_vec(), nginx);
    assert_eq!(nginx, [0, 0, 1, 0, 2, 0, 0]);
    // And a sequence that over-picks one target fails the window check.
    let wrong = [0, 0, 1, 0, 0, 0, 0];
    assert!(assert_windows_exact(&wrong, &ids, &[5, 1, 1]).is_err());
}
