//! Pick cost per algorithm at 2, 8, 64 and 1,024 targets: one `pick_one`, including creating
//! and dropping its guard, with nothing held (every target eligible); then the least-in-flight
//! rules with every target busy.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use offload_balance::{Algorithm, LoadBalancer, LoadSample, PickContext, Target};
use rand::rngs::SmallRng;
use rand::SeedableRng;

fn balancer(algorithm: Algorithm, n: usize) -> LoadBalancer<SmallRng> {
    let targets = (0..n).map(|i| Target::new(i as i64).with_weight(1.0 + (i % 5) as f64));
    let mut lb = LoadBalancer::from_rng(targets, algorithm, SmallRng::seed_from_u64(42)).unwrap();
    lb.refresh_params((0..n).map(|i| {
        (
            i as i64,
            LoadSample::new((i % 7) as f64 * 10.0, 1_000 + i as u64),
        )
    }));
    lb
}

fn picks(c: &mut Criterion) {
    // Keys for specify and consistentHash, cycled so lookups are not all the same.
    let keys: Vec<String> = (0..256).map(|k| format!("user-{k}")).collect();
    for &algorithm in Algorithm::ALL {
        let mut group = c.benchmark_group(algorithm.name());
        for n in [2_usize, 8, 64, 1_024] {
            let mut lb = balancer(algorithm, n);
            // Warm lazily built state (cumulative weights, the hash ring).
            drop(lb.pick_one(&PickContext::new().with_key("warm")));
            let mut k = 0_usize;
            group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
                b.iter(|| {
                    k = k.wrapping_add(1);
                    let ctx = match algorithm {
                        Algorithm::Specify => PickContext::new().with_key((k % n) as i64),
                        Algorithm::ConsistentHash => {
                            PickContext::new().with_key(keys[k % keys.len()].as_str())
                        }
                        _ => PickContext::new(),
                    };
                    black_box(lb.pick_one(black_box(&ctx)))
                });
            });
        }
        group.finish();
    }
}

/// `minimumConnection` stops at the first idle target, so with nothing held it is O(1). Here every
/// target already holds one pick, which makes it scan them all; `p2c` for comparison.
fn busy_picks(c: &mut Criterion) {
    for algorithm in [Algorithm::MinimumConnection, Algorithm::P2c] {
        let mut group = c.benchmark_group(format!("{}-busy", algorithm.name()));
        for n in [2_usize, 8, 64, 1_024] {
            let mut lb = balancer(algorithm, n);
            lb.set_algorithm(Algorithm::Polling);
            let held = lb.pick_multi(n, &PickContext::new());
            lb.set_algorithm(algorithm);
            group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter(|| black_box(lb.pick_one(&PickContext::new())));
            });
            drop(held);
        }
        group.finish();
    }
}

criterion_group!(benches, picks, busy_picks);
criterion_main!(benches);
