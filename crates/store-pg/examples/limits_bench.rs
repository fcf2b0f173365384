//! The rate limiter's accuracy and the cost of limits per claim, on SQLite and PostgreSQL, in
//! one run. Used by `bench/limits/run`; prints a table (and one JSON object per measurement on
//! stderr).
//!
//! ```text
//! cargo run --release -p offload-store-pg --example limits_bench -- [PG_URL] [JOBS]
//! ```
//!
//! - **cost**: `JOBS` queued jobs of one pool, a dispatch loop of `claim(n = 32)` then one
//!   `complete` of what it claimed (instant jobs), timed per claim call: without limits, then
//!   with a pool rate limit and a job-name concurrency limit that never bind (the limited
//!   claim's own cost), then with 8 job names, one limited to 4 running at once (a limit that
//!   binds: the claim passes over held jobs). The ratio is µs per claimed job against the run
//!   without limits.
//! - **accuracy**: a pool limited to `LIMIT` starts per `PERIOD`, more queued jobs than it can
//!   start, the same loop for a few periods: starts seen in each period, and in all against
//!   the most a token bucket allows (its full burst plus one refill per period; the burst
//!   lands in the first period or two).
//!
//! Without `PG_URL` only SQLite runs. With one, it must be an empty scratch database.

use std::time::{Duration, Instant};

use offload_store::throttle::{Rate, Throttle};
use offload_store::{Completion, Demand, NewJob, Queue, SqliteStore, Store, Transition};
use offload_store_pg::PgStore;
use serde_json::json;

const LEASE: Duration = Duration::from_secs(60);
const WINDOW: Duration = Duration::from_secs(3600);
const BATCH: usize = 32;
/// The accuracy run's rate: `LIMIT` starts per `PERIOD_MS`, for `PERIODS` periods.
const LIMIT: u64 = 50;
const PERIOD_MS: u64 = 500;
const PERIODS: u64 = 6;

fn job(name: &str, i: usize) -> NewJob {
    NewJob {
        job: name.into(),
        params: json!({ "n": i }),
        pool: "node".into(),
        priority: 0,
        run_at: None,
        timeout_ms: Some(30_000),
        max_attempts: 3,
        backoff_ms: 1_000,
        backoff: None,
        keep_result_ms: None,
        key_ttl_ms: None,
        idempotency_key: None,
        cron: None,
        unique: false,
        after: Vec::new(),
        after_policy: Default::default(),
    }
}

fn done(c: &offload_store::Claimed) -> Completion {
    Completion {
        id: c.id,
        attempt: c.attempt,
        node: "bench".into(),
        pid: None,
        started_at: 0,
        ended_at: 0,
        outcome: "succeeded".into(),
        then: Transition::Succeeded {
            result: json!(null),
        },
    }
}

async fn fill(store: &dyn Store, n: usize, names: &[&str]) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let jobs = chunk
            .iter()
            .map(|&i| job(names[i % names.len()], i))
            .collect();
        store.submit(jobs, WINDOW).await.expect("submit");
    }
}

/// Claims and completes until nothing is claimed; returns (claim calls' time, jobs claimed).
async fn drain(store: &dyn Store) -> (Duration, usize) {
    let demand = [Demand {
        pool: "node".into(),
        n: BATCH,
    }];
    let (mut spent, mut jobs) = (Duration::ZERO, 0);
    loop {
        let t = Instant::now();
        let c = store.claim("bench", &demand, LEASE).await.expect("claim");
        spent += t.elapsed();
        if c.is_empty() {
            return (spent, jobs);
        }
        jobs += c.len();
        store
            .complete(c.iter().map(done).collect())
            .await
            .expect("complete");
    }
}

fn limit(queue: Queue, rate: Option<(u64, u64)>, max_running: Option<u64>) -> Throttle {
    Throttle {
        queue,
        rate: rate.map(|(limit, period_ms)| Rate { limit, period_ms }),
        max_running,
    }
}

async fn cost(engine: &str, store: &dyn Store, jobs: usize) -> Vec<(String, f64)> {
    let mut rows = Vec::new();
    let cases: [(&str, Vec<Throttle>, Vec<&str>); 3] = [
        ("no limits", vec![], vec!["a"]),
        (
            "limits that never bind",
            vec![
                limit(Queue::pool("node"), Some((1_000_000, 1)), None),
                limit(Queue::job("a"), None, Some(1_000_000)),
            ],
            vec!["a"],
        ),
        (
            "1 of 8 names at 4 running",
            vec![limit(Queue::job("a"), None, Some(4))],
            vec!["a", "b", "c", "d", "e", "f", "g", "h"],
        ),
    ];
    for (what, limits, names) in cases {
        store.set_limits(limits).await.expect("set_limits");
        fill(store, jobs, &names).await;
        let (spent, n) = drain(store).await;
        let us = spent.as_secs_f64() * 1e6 / n.max(1) as f64;
        eprintln!(
            "{}",
            json!({"engine": engine, "measure": "claim_cost", "case": what, "jobs": n,
                   "us_per_job": us})
        );
        rows.push((what.to_owned(), us));
    }
    store.set_limits(vec![]).await.expect("set_limits");
    rows
}

/// Starts per period under a rate limit, the loop claiming as fast as it can.
async fn accuracy(engine: &str, store: &dyn Store) -> Vec<u64> {
    store
        .set_limits(vec![limit(
            Queue::pool("node"),
            Some((LIMIT, PERIOD_MS)),
            None,
        )])
        .await
        .expect("set_limits");
    fill(store, (LIMIT * (PERIODS + 2)) as usize, &["r"]).await;
    let demand = [Demand {
        pool: "node".into(),
        n: BATCH,
    }];
    let start = Instant::now();
    let end = Duration::from_millis(PERIOD_MS * PERIODS);
    let mut per = vec![0u64; PERIODS as usize];
    while start.elapsed() < end {
        let c = store.claim("bench", &demand, LEASE).await.expect("claim");
        let at = start.elapsed().as_millis() as u64 / PERIOD_MS;
        if let Some(slot) = per.get_mut(at as usize) {
            *slot += c.len() as u64;
        }
        if !c.is_empty() {
            store
                .complete(c.iter().map(done).collect())
                .await
                .expect("complete");
        }
    }
    eprintln!(
        "{}",
        json!({"engine": engine, "measure": "rate_accuracy", "limit": LIMIT,
               "period_ms": PERIOD_MS, "starts_per_period": per})
    );
    store.set_limits(vec![]).await.expect("set_limits");
    drain(store).await;
    per
}

async fn run(engine: &str, store: &dyn Store, jobs: usize) {
    // Warm up (prepared statements, pages in the cache) before measuring.
    fill(store, 500, &["w"]).await;
    drain(store).await;
    let cost = cost(engine, store, jobs).await;
    let per = accuracy(engine, store).await;
    let base = cost[0].1;
    println!("\n{engine}: claim + complete loop, claim({BATCH}), {jobs} jobs per case");
    println!("| case | µs per claimed job (claim calls only) | vs no limits |");
    println!("|---|---:|---:|");
    for (what, us) in &cost {
        println!("| {what} | {us:.1} | {:.2}× |", us / base);
    }
    // A token bucket allows its full burst plus one refill per period, no more.
    let total: u64 = per.iter().sum();
    let bound = LIMIT * (PERIODS + 1);
    let steady: Vec<u64> = per.iter().skip(2).copied().collect();
    let mean = steady.iter().sum::<u64>() as f64 / steady.len().max(1) as f64;
    println!(
        "{engine}: rate {LIMIT}/{PERIOD_MS} ms over {PERIODS} periods: starts per period \
         {per:?}; in all {total} of at most {bound} (the bucket's burst + {PERIODS} refills) = \
         {:.3}; from the third period on: mean {mean:.1} per period = {:.3}× the limit, most {}",
        total as f64 / bound as f64,
        mean / LIMIT as f64,
        steady.iter().max().unwrap_or(&0)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().filter(|u| !u.is_empty() && u != "-");
    let jobs: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(5_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = SqliteStore::open(dir.path()).expect("sqlite");
    run("SQLite", &sqlite, jobs).await;
    drop(sqlite);
    if let Some(url) = url {
        let pg = PgStore::connect(&url).await.expect("postgres");
        run("PostgreSQL", &pg, jobs).await;
    }
}
