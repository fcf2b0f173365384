//! The store alone, without workers: how many jobs a second one PostgreSQL database takes in
//! and hands out, with 1..=K nodes (a `PgStore` each) claiming at once. Used by
//! `bench/multinode/run`; prints one JSON object per measurement.
//!
//! ```text
//! cargo run --release -p offload-store-pg --example claim_rate -- URL [JOBS] [MAX_NODES]
//! ```
//!
//! - `submit_1`: single-job submits from 32 concurrent callers (an HTTP submit each);
//! - `submit_100`: batches of 100;
//! - `claim_complete`: K nodes, 4 dispatch loops each, `claim(n = 32)` then one `complete` of
//!   what was claimed (the daemon's cycle, with instant jobs): jobs claimed and completed per
//!   second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use offload_store::{Completion, Demand, NewJob, Store, Transition};
use offload_store_pg::{PgOptions, PgStore};
use serde_json::json;

fn job(i: u64) -> NewJob {
    NewJob {
        job: "noop".into(),
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

async fn reset(url: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .batch_execute(
            "TRUNCATE offload_jobs, offload_attempts, offload_idempotency, offload_counts, \
             offload_count_deltas, offload_cron_ticks",
        )
        .await
        .expect("truncate");
    client
        .batch_execute("VACUUM ANALYZE offload_jobs")
        .await
        .expect("vacuum");
}

/// CPU seconds so far of every `postgres` process, and of this process.
fn cpu() -> (f64, f64) {
    fn secs(stat: &str) -> Option<(String, f64)> {
        let comm = stat.get(stat.find('(')? + 1..stat.rfind(')')?)?.to_owned();
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some((comm, ticks / 100.0))
    }
    let mut pg = 0.0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) {
            if let Some((comm, s)) = secs(&stat) {
                if comm.starts_with("postgres") {
                    pg += s;
                }
            }
        }
    }
    let me = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| secs(&s))
        .map_or(0.0, |(_, s)| s);
    (pg, me)
}

/// A measurement: jobs per second, and the cores PostgreSQL and this client used meanwhile.
struct Measure {
    t: Instant,
    cpu: (f64, f64),
}

impl Measure {
    fn start() -> Self {
        Self {
            cpu: cpu(),
            t: Instant::now(),
        }
    }

    fn report(self, what: &str, nodes: usize, jobs: u64) {
        let secs = self.t.elapsed().as_secs_f64();
        let (pg, me) = cpu();
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "{}",
            json!({ "measure": what, "nodes": nodes, "jobs": jobs, "secs": secs,
                    "per_sec": (jobs as f64 / secs).round(),
                    "cores": { "postgres": ((pg - self.cpu.0) / secs * 100.0).round() / 100.0,
                               "client": ((me - self.cpu.1) / secs * 100.0).round() / 100.0 },
                    "loadavg_after": load.split(' ').next().and_then(|l| l.parse::<f64>().ok()) })
        );
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .expect("usage: claim_rate URL [JOBS] [MAX_NODES]");
    let jobs: u64 = args.next().map_or(20_000, |s| s.parse().expect("JOBS"));
    let max_nodes: usize = args.next().map_or(3, |s| s.parse().expect("MAX_NODES"));
    let window = Duration::from_secs(3600);
    let options = PgOptions::default().with_pool_size(8);

    // Submits.
    let store = Arc::new(
        PgStore::connect_with(&url, options.clone())
            .await
            .expect("connect"),
    );
    reset(&url).await;
    let m = Measure::start();
    let per = jobs / 32;
    let mut tasks = Vec::new();
    for c in 0..32 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                store.submit(vec![job(c * per + i)], window).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    m.report("submit_1", 1, per * 32);

    reset(&url).await;
    let m = Measure::start();
    let mut tasks = Vec::new();
    for c in 0..4 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for b in 0..jobs / 400 {
                let batch = (0..100).map(|i| job(c * 1_000_000 + b * 100 + i)).collect();
                store.submit(batch, window).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    m.report("submit_100", 1, jobs / 400 * 400);
    drop(store);

    // Claims and completions, on 1..=max_nodes nodes.
    for nodes in 1..=max_nodes {
        reset(&url).await;
        let loader = PgStore::connect_with(&url, options.clone()).await.unwrap();
        for b in 0..jobs / 1_000 {
            let batch = (0..1_000).map(|i| job(b * 1_000 + i)).collect();
            loader.submit(batch, window).await.unwrap();
        }
        drop(loader);
        let mut stores = Vec::new();
        for _ in 0..nodes {
            stores.push(Arc::new(
                PgStore::connect_with(&url, options.clone()).await.unwrap(),
            ));
        }
        let m = Measure::start();
        let mut tasks = Vec::new();
        for (n, store) in stores.iter().enumerate() {
            for _ in 0..4 {
                let store = Arc::clone(store);
                let node = format!("bench-{n}");
                tasks.push(tokio::spawn(async move {
                    let demand = [Demand {
                        pool: "node".into(),
                        n: 32,
                    }];
                    let mut done = 0u64;
                    loop {
                        let claimed = store
                            .claim(&node, &demand, Duration::from_secs(30))
                            .await
                            .unwrap();
                        if claimed.is_empty() {
                            return done;
                        }
                        done += claimed.len() as u64;
                        let now = offload_store::now_ms();
                        let ends = claimed
                            .into_iter()
                            .map(|c| Completion {
                                id: c.id,
                                attempt: c.attempt,
                                node: node.clone(),
                                pid: Some(1),
                                started_at: now,
                                ended_at: now,
                                outcome: "succeeded".into(),
                                then: Transition::Succeeded { result: json!(1) },
                            })
                            .collect();
                        store.complete(ends).await.unwrap();
                    }
                }));
            }
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        m.report("claim_complete", nodes, total);
    }
}
