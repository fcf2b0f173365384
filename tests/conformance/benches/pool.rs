//! The offload side of the pool benchmark (`bench/peers/run` runs it beside the peers).
//!
//! One pool of 2 workers (Rust, Node or Python SDK), one workload per invocation, one JSON line
//! per run on stdout:
//!
//! - `a`: N tiny tasks (`inc`: x+1) submitted at once with `pool.run` in a loop, then every
//!   result awaited; tasks/s from the first submit to the last result.
//! - `b`: the same tasks one at a time (`run` → `result`); p50/p99 of the round trips, after a
//!   warm-up that is not counted; stops after N tasks or the time limit.
//! - `c`: N tasks that busy-wait 1 ms (`spin`) submitted at once; tasks/s.
//!
//! ```text
//! cargo bench -p offload-conformance --bench pool -- \
//!     --kind rust|node|python --workload a|b|c --worker <bench worker binary> \
//!     [--jobs bench/peers/jobs] [--tasks N] [--concurrency C] [--workers 2] [--runs R] \
//!     [--time-limit SECS] [--warmup N] [--threads 2] [--worker-runtime multi|current]
//! ```
//!
//! `--worker` is the Rust worker of `bench/peers/rust-worker` (handlers `inc` and `spin`); it is
//! only needed for `--kind rust`. Every option also reads `POOL_BENCH_<NAME>` (`POOL_BENCH_KIND`,
//! …). Besides the rates, each line has the CPU time the supervisor (this process) and the
//! workers spent per task, and their context switches per task, read from /proc.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use offload_conformance::repo_root;
use offload_pool::{Backpressure, ChildPool, PoolConfig, WorkerKind};
use offload_process::Outcome;
use serde_json::json;

/// Warm-up tasks of workload (c), not counted: about six seconds of 1 ms tasks on 2 workers,
/// until a Node worker's V8 has stopped compiling (its platform threads spent 50 ms per 2 s
/// at first, 20–36 ms in the next 2 s, under 1 ms from about 6 s on: bench/peers/README.md).
const WARMUP_C: u64 = 12_000;

#[derive(Debug, Clone)]
struct Opts {
    kind: String,
    workload: String,
    worker: Option<PathBuf>,
    jobs: PathBuf,
    tasks: usize,
    concurrency: u32,
    workers: usize,
    runs: usize,
    time_limit: Duration,
    warmup: usize,
    threads: usize,
    /// The Rust bench worker's runtime: `multi` (`Worker::run`, the SDK's default) or
    /// `current` (a current-thread runtime; an experiment, see bench/peers/README.md).
    worker_runtime: String,
}

fn usage(msg: &str) -> ! {
    eprintln!("pool bench: {msg}");
    eprintln!(
        "usage: pool --kind rust|node|python --workload a|b|c [--worker PATH] [--jobs DIR] \
         [--tasks N] [--concurrency C] [--workers W] [--runs R] [--time-limit SECS] \
         [--warmup N] [--threads T] [--worker-runtime multi|current]"
    );
    std::process::exit(2)
}

fn parse_opts() -> Opts {
    let mut raw: Vec<(String, String)> = Vec::new();
    for name in [
        "kind",
        "workload",
        "worker",
        "jobs",
        "tasks",
        "concurrency",
        "workers",
        "runs",
        "time-limit",
        "warmup",
        "threads",
        "worker-runtime",
    ] {
        let var = format!("POOL_BENCH_{}", name.to_uppercase().replace('-', "_"));
        if let Ok(v) = std::env::var(var) {
            raw.push((name.to_owned(), v));
        }
    }
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        // `cargo bench` adds `--bench`; ignore flags we do not know that take no value.
        let Some(name) = a.strip_prefix("--") else {
            continue;
        };
        let (name, value) = match name.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (name.to_owned(), None),
        };
        if name == "bench" {
            continue;
        }
        let value = value
            .or_else(|| args.next())
            .unwrap_or_else(|| usage(&format!("--{name} needs a value")));
        raw.push((name, value));
    }
    let get = |k: &str| {
        raw.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let num = |k: &str, d: u64| -> u64 {
        get(k).map_or(d, |v| {
            v.replace('_', "")
                .parse()
                .unwrap_or_else(|_| usage(&format!("--{k}: not a number: {v}")))
        })
    };
    let kind = get("kind").unwrap_or_else(|| usage("--kind is required"));
    if !["rust", "node", "python"].contains(&kind.as_str()) {
        usage(&format!("unknown kind {kind}"));
    }
    let workload = get("workload").unwrap_or_else(|| usage("--workload is required"));
    if !["a", "b", "c"].contains(&workload.as_str()) {
        usage(&format!("unknown workload {workload}"));
    }
    let default_tasks = if workload == "c" { 5_000 } else { 100_000 };
    // Tiny tasks: several in flight per worker hide the round trip; 1 ms tasks: one running
    // per worker and one waiting behind it (the worker never idles between two tasks).
    let default_concurrency = match workload.as_str() {
        "a" => 64,
        "c" => 2,
        _ => 1,
    };
    let worker = get("worker").map(PathBuf::from);
    if kind == "rust" && worker.is_none() {
        usage("--kind rust needs --worker (the binary of bench/peers/rust-worker)");
    }
    let tasks = num("tasks", default_tasks) as usize;
    Opts {
        kind,
        worker,
        jobs: get("jobs").map_or_else(|| repo_root().join("bench/peers/jobs"), PathBuf::from),
        tasks,
        concurrency: u32::try_from(num("concurrency", default_concurrency))
            .unwrap_or(1)
            .max(1),
        workers: (num("workers", 2) as usize).max(1),
        runs: (num("runs", 1) as usize).max(1),
        time_limit: Duration::from_secs_f64(num("time-limit", 60) as f64),
        // (c): about a second of 1 ms tasks, so that a JIT (the Node rows) has compiled what
        // runs per job before the count starts; 8 tasks measured V8's warm-up as well.
        warmup: num(
            "warmup",
            if workload == "c" {
                WARMUP_C
            } else {
                (tasks / 100).clamp(100, 1_000) as u64
            },
        ) as usize,
        threads: (num("threads", 2) as usize).max(1),
        worker_runtime: get("worker-runtime").unwrap_or_else(|| "multi".into()),
        workload,
    }
}

impl Opts {
    /// The row name: `offload-<kind>`, `offload-rust-ct` for the current-thread experiment.
    fn system(&self) -> String {
        if self.kind == "rust" && self.worker_runtime == "current" {
            "offload-rust-ct".into()
        } else {
            format!("offload-{}", self.kind)
        }
    }
}

/// utime + stime of a process (all its threads), in seconds; and its context switches (all
/// threads, voluntary + involuntary).
fn proc_usage(pid: &str) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let mut switches = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("status")) {
                for line in s.lines() {
                    if line.starts_with("voluntary_ctxt_switches")
                        || line.starts_with("nonvoluntary_ctxt_switches")
                    {
                        switches += line
                            .split_whitespace()
                            .nth(1)
                            .and_then(|v| v.parse::<u64>().ok())
                            .unwrap_or(0);
                    }
                }
            }
        }
    }
    // USER_HZ is 100 on every Linux this runs on.
    Some(((utime + stime) as f64 / 100.0, switches))
}

#[derive(Default, Clone, Copy)]
struct Usage {
    sup_cpu: f64,
    sup_switches: u64,
    workers_cpu: f64,
    workers_switches: u64,
}

fn usage_now(pids: &[u32]) -> Usage {
    let (sup_cpu, sup_switches) = proc_usage("self").unwrap_or_default();
    let mut u = Usage {
        sup_cpu,
        sup_switches,
        ..Usage::default()
    };
    for pid in pids {
        if let Some((cpu, sw)) = proc_usage(&pid.to_string()) {
            u.workers_cpu += cpu;
            u.workers_switches += sw;
        }
    }
    u
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e6
}

fn check(outcome: &Outcome, want: u64, errors: &mut u64, first_error: &mut Option<String>) {
    match outcome {
        Outcome::Succeeded { value } if value.as_u64() == Some(want) => {}
        other => {
            *errors += 1;
            if first_error.is_none() {
                *first_error = Some(format!("expected {want}, got {other}"));
            }
        }
    }
}

async fn one_run(o: &Opts, run: usize) -> Result<serde_json::Value, String> {
    let kind = match o.kind.as_str() {
        "rust" => WorkerKind::Program(o.worker.clone().expect("checked")),
        "node" => WorkerKind::Node,
        _ => WorkerKind::Python,
    };
    let mut cfg = PoolConfig::new(kind, &o.jobs)
        .size(o.workers, o.workers)
        .concurrency(o.concurrency)
        .queue(o.tasks.max(1) + 1_000, Backpressure::Wait)
        .handle_signals(false);
    cfg.env
        .push(("BENCH_WORKER_RUNTIME".into(), o.worker_runtime.clone()));
    let t0 = Instant::now();
    let pool = ChildPool::start(cfg).await.map_err(|e| e.to_string())?;
    let start_ms = t0.elapsed().as_secs_f64() * 1e3;
    let pids = pool.pids();
    let job = if o.workload == "c" { "spin" } else { "inc" };
    let plus = u64::from(o.workload != "c");
    let mut errors = 0u64;
    let mut first_error = None;

    // Warm-up (not counted): loads the job files, fills caches, wakes the workers.
    let warm = o.warmup;
    let mut handles = Vec::with_capacity(warm);
    for i in 0..warm as u64 {
        handles.push(
            pool.run(job, json!({ "x": i }))
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    for (i, h) in handles.into_iter().enumerate() {
        check(
            &h.result().await.outcome,
            i as u64 + plus,
            &mut errors,
            &mut first_error,
        );
    }
    if errors > 0 {
        pool.kill().await;
        return Err(format!(
            "warm-up failed: {}",
            first_error.unwrap_or_default()
        ));
    }

    let before = usage_now(&pids);
    let started = Instant::now();
    let mut lat: Vec<Duration> = Vec::new();
    let mut done = 0usize;
    let mut timed_out = false;
    match o.workload.as_str() {
        "b" => {
            lat.reserve(o.tasks);
            for i in 0..o.tasks as u64 {
                let t = Instant::now();
                let h = pool
                    .run(job, json!({ "x": i }))
                    .await
                    .map_err(|e| e.to_string())?;
                let r = h.result().await;
                lat.push(t.elapsed());
                check(&r.outcome, i + plus, &mut errors, &mut first_error);
                done += 1;
                if done.is_multiple_of(256) && started.elapsed() > o.time_limit {
                    timed_out = true;
                    break;
                }
            }
        }
        _ => {
            let mut handles = Vec::with_capacity(o.tasks);
            for i in 0..o.tasks as u64 {
                handles.push(
                    pool.run(job, json!({ "x": i }))
                        .await
                        .map_err(|e| e.to_string())?,
                );
            }
            let deadline = started + o.time_limit;
            for (i, h) in handles.into_iter().enumerate() {
                match tokio::time::timeout_at(deadline.into(), h.result()).await {
                    Ok(r) => check(&r.outcome, i as u64 + plus, &mut errors, &mut first_error),
                    Err(_) => {
                        timed_out = true;
                        break;
                    }
                }
                done += 1;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let after = usage_now(&pids);
    if timed_out {
        pool.kill().await;
    } else {
        pool.shutdown(Duration::from_secs(5)).await;
    }
    lat.sort_unstable();
    let n = done.max(1) as f64;
    Ok(json!({
        "system": o.system(),
        "workload": o.workload,
        "run": run,
        "tasks": done,
        "secs": secs,
        "per_sec": done as f64 / secs,
        "p50_us": if lat.is_empty() { serde_json::Value::Null } else { json!(percentile(&lat, 0.50)) },
        "p99_us": if lat.is_empty() { serde_json::Value::Null } else { json!(percentile(&lat, 0.99)) },
        "workers": o.workers,
        "concurrency": o.concurrency,
        "threads": o.threads,
        "worker_runtime": if o.kind == "rust" { json!(o.worker_runtime) } else { serde_json::Value::Null },
        "start_ms": start_ms,
        "errors": errors,
        "first_error": first_error,
        "timed_out": timed_out,
        "sup_cpu_us_per_task": (after.sup_cpu - before.sup_cpu) * 1e6 / n,
        "workers_cpu_us_per_task": (after.workers_cpu - before.workers_cpu) * 1e6 / n,
        "sup_switches_per_task": (after.sup_switches - before.sup_switches) as f64 / n,
        "workers_switches_per_task": (after.workers_switches - before.workers_switches) as f64 / n,
    }))
}

fn main() {
    let o = parse_opts();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.threads)
        .enable_all()
        .build()
        .expect("runtime");
    let mut failed = false;
    for run in 1..=o.runs {
        let opts = o.clone();
        // Runs on a worker thread of the runtime: the process uses `threads` threads, not one
        // more for `block_on`.
        let line = rt
            .block_on(async move { tokio::spawn(async move { one_run(&opts, run).await }).await })
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        match line {
            Ok(v) => println!("{v}"),
            Err(e) => {
                failed = true;
                println!(
                    "{}",
                    json!({
                        "system": o.system(),
                        "workload": o.workload,
                        "run": run,
                        "error": e,
                    })
                );
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
