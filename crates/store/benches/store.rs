//! Throughput of `SqliteStore` on a real file: submit (one job per call from many concurrent
//! callers, and batches of 100), claim + complete (batched, and one job per call from many
//! callers), for each `Synchronous` mode.
//!
//! `cargo bench -p offload-store --bench store`. The database lives in a temporary directory
//! under `OFFLOAD_BENCH_DIR` (default: the system's temp dir; make sure it is a real disk, not
//! a tmpfs, or `fsync` costs nothing). `OFFLOAD_BENCH_SCALE=0.1` runs a tenth of the work.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use offload_store::{
    Completion, Demand, NewJob, SqliteOptions, SqliteStore, Store, Synchronous, Transition,
};
use serde_json::json;

const NODE: &str = "bench";
const LEASE: Duration = Duration::from_secs(60);
const WINDOW: Duration = Duration::from_secs(3600);

fn job(i: usize) -> NewJob {
    NewJob {
        job: "noop.js".into(),
        params: json!({ "i": i, "payload": "a small job of about a hundred bytes of parameters" }),
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

fn scaled(n: usize) -> usize {
    let scale: f64 = std::env::var("OFFLOAD_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * scale) as usize).max(1)
}

struct Run {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
}

fn open(sync: Synchronous) -> Run {
    let base = std::env::var_os("OFFLOAD_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    let store = SqliteStore::open_with(dir.path(), SqliteOptions::default().with_synchronous(sync))
        .expect("open");
    Run {
        _dir: dir,
        store: Arc::new(store),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// CPU time (user + system) the store's writer thread has used so far, from /proc (Linux).
/// Wall-clock rates depend on what else the machine runs; this does not.
fn writer_cpu() -> Option<Duration> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut total = 0u64;
    let mut found = false;
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !comm.starts_with("offload-store-w") {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).ok()?;
        // Fields after the command (which ends with ')'): utime is the 12th, stime the 13th.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        total += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        found = true;
    }
    // Clock ticks: 100 per second on Linux.
    found.then(|| Duration::from_millis(total * 10))
}

/// Whether to run the scenario `name` (`OFFLOAD_BENCH_ONLY`: a part of its name).
fn wanted(name: &str) -> bool {
    std::env::var("OFFLOAD_BENCH_ONLY").map_or(true, |only| name.contains(&only))
}

fn report(
    name: &str,
    sync: Synchronous,
    jobs: usize,
    took: Duration,
    cpu: Duration,
    lat: &mut [Duration],
) {
    lat.sort_unstable();
    println!(
        "{name:<36} {sync:<7} {jobs:>7} jobs {:>7.0} jobs/s  writer CPU {:>5.1} µs/job  \
         call p50 {:>6.2} ms p99 {:>7.2} ms",
        jobs as f64 / took.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / jobs as f64,
        percentile(lat, 0.5).as_secs_f64() * 1e3,
        percentile(lat, 0.99).as_secs_f64() * 1e3,
        sync = format!("{sync:?}"),
    );
    let _ = std::io::stdout().flush();
}

/// `tasks` callers, each submitting `per_call` jobs per call, `total` jobs in all.
async fn submit(
    run: &Run,
    tasks: usize,
    per_call: usize,
    total: usize,
) -> (Duration, Vec<Duration>) {
    let calls = total / per_call / tasks;
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let store = Arc::clone(&run.store);
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(calls);
                for c in 0..calls {
                    let jobs = (0..per_call)
                        .map(|i| job(t * 1_000_000 + c * per_call + i))
                        .collect();
                    let t0 = Instant::now();
                    store.submit(jobs, WINDOW).await.expect("submit");
                    lat.push(t0.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.await.expect("task"));
    }
    (start.elapsed(), lat)
}

/// `tasks` nodes' loops, each claiming up to `n` and completing them in one call, until the
/// queue is empty. Returns the jobs done.
async fn claim_complete(run: &Run, tasks: usize, n: usize) -> (usize, Duration, Vec<Duration>) {
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let store = Arc::clone(&run.store);
            tokio::spawn(async move {
                let demand = [Demand {
                    pool: "node".into(),
                    n,
                }];
                let mut lat = Vec::new();
                let mut done = 0;
                loop {
                    let t0 = Instant::now();
                    let claimed = store.claim(NODE, &demand, LEASE).await.expect("claim");
                    if claimed.is_empty() {
                        return (done, lat);
                    }
                    let now = offload_store::now_ms();
                    let completions = claimed
                        .iter()
                        .map(|c| Completion {
                            id: c.id,
                            attempt: c.attempt,
                            node: NODE.into(),
                            pid: Some(1),
                            started_at: now,
                            ended_at: now,
                            outcome: "succeeded".into(),
                            then: Transition::Succeeded {
                                result: json!(null),
                            },
                        })
                        .collect();
                    done += claimed.len();
                    store.complete(completions).await.expect("complete");
                    lat.push(t0.elapsed());
                }
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut done = 0;
    for h in handles {
        let (d, l) = h.await.expect("task");
        done += d;
        lat.extend(l);
    }
    (done, start.elapsed(), lat)
}

fn fsync_latency() -> Duration {
    let base = std::env::var_os("OFFLOAD_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    let mut f = std::fs::File::create(dir.path().join("probe")).expect("probe");
    let start = Instant::now();
    for _ in 0..50 {
        f.write_all(&[0u8; 4096]).expect("write");
        f.sync_data().expect("fsync");
    }
    start.elapsed() / 50
}

fn main() {
    // Under `cargo test --benches` (or with --test): a smoke run only.
    if std::env::args().any(|a| a == "--test") {
        std::env::set_var("OFFLOAD_BENCH_SCALE", "0.01");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "offload-store bench: SQLite {}, {} cores, write+fsync of 4 KiB here: {:.2} ms",
        rusqlite::version(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        fsync_latency().as_secs_f64() * 1e3
    );
    let modes: Vec<Synchronous> = match std::env::var("OFFLOAD_BENCH_SYNC").as_deref() {
        Ok("full") => vec![Synchronous::Full],
        Ok("normal") => vec![Synchronous::Normal],
        _ => vec![Synchronous::Full, Synchronous::Normal],
    };
    rt.block_on(async {
        for sync in modes {
            let run = open(sync);
            let cpu = || writer_cpu().unwrap_or_default();
            let name = "submit 1 per call, 64 callers";
            if wanted(name) {
                let total = scaled(64 * 600);
                let c0 = cpu();
                let (took, mut lat) = submit(&run, 64, 1, total).await;
                report(name, sync, total, took, cpu() - c0, &mut lat);
            }
            let name = "submit 1 per call, 256 callers";
            if wanted(name) {
                let total = scaled(256 * 150);
                let c0 = cpu();
                let (took, mut lat) = submit(&run, 256, 1, total).await;
                report(name, sync, total, took, cpu() - c0, &mut lat);
            }
            let name = "submit 100 per call, 8 callers";
            if wanted(name) {
                let total = scaled(200_000).max(800);
                let c0 = cpu();
                let (took, mut lat) = submit(&run, 8, 100, total).await;
                report(name, sync, total, took, cpu() - c0, &mut lat);
            }
            // The queue holds what the submits left, plus 100,000 more.
            let name = "claim 100 + complete, 4 loops";
            if wanted(name) {
                submit(&run, 8, 100, scaled(100_000).max(800)).await;
                let c0 = cpu();
                let (done, took, mut lat) = claim_complete(&run, 4, 100).await;
                report(name, sync, done, took, cpu() - c0, &mut lat);
            }
            let name = "claim 1 + complete, 64 loops";
            if wanted(name) {
                submit(&run, 64, 100, scaled(64 * 300).max(6_400)).await;
                let c0 = cpu();
                let (done, took, mut lat) = claim_complete(&run, 64, 1).await;
                report(name, sync, done, took, cpu() - c0, &mut lat);
            }
        }
    });
}
