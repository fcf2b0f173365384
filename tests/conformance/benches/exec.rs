//! `ChildJob::exec()` → outcome latency, one fresh process per job, side by side in one run with
//! the cost of spawning `/bin/true` and a raw Node child (spawn → its first IPC message).
//!
//! `cargo bench -p offload-conformance --bench exec` (samples per row: env `SAMPLES`, default 50;
//! `ROWS=native` runs only the native rows, for `strace`/`perf` of the spawn path;
//! `STATIC_WORKER=<path>` adds the conformance worker linked statically beside it, one exec of
//! each in turn).
//!
//! The native row is also broken down: `exec()` returned (the process is spawned), the worker's
//! handshake seen (`ready`), the outcome, and the exit (the group reaped; not part of the
//! outcome's latency).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use offload_conformance::{jobs_dir, repo_root};
use offload_process::{ChildJob, ChildJobConfig, ExecOptions, JobKind, WorkerCommand};
use offload_protocol::FrameReader;
use serde_json::json;

fn rust_worker() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("conformance-worker")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

async fn time_exec(jobs: &ChildJob, job: &str, n: usize) -> Duration {
    time_exec_phases(jobs, job, n).await.outcome
}

/// Medians of each phase of an exec, each from the exec call.
struct Phases {
    spawned: Duration,
    ready: Duration,
    outcome: Duration,
    exited: Duration,
}

async fn time_exec_phases(jobs: &ChildJob, job: &str, n: usize) -> Phases {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        samples.push(exec_once(jobs, job, i).await);
    }
    Phases::of(samples)
}

/// One exec of `job`: the times of its phases, each from the exec call (spawned, ready,
/// outcome, exited).
async fn exec_once(jobs: &ChildJob, job: &str, i: usize) -> [Duration; 4] {
    let t = Instant::now();
    let p = jobs
        .exec(job, json!({ "i": i }), ExecOptions::default())
        .await
        .expect("exec");
    let spawned = t.elapsed();
    let handshake = p.ready().await;
    let ready = t.elapsed();
    let outcome = p.outcome().await;
    let done = t.elapsed();
    assert!(handshake.is_some(), "{job}: no handshake");
    assert!(outcome.is_success(), "{job}: {outcome}");
    p.exited().await;
    [spawned, ready, done, t.elapsed()]
}

impl Phases {
    fn of(samples: Vec<[Duration; 4]>) -> Self {
        let phase = |k: usize| median(samples.iter().map(|s| s[k]).collect());
        Phases {
            spawned: phase(0),
            ready: phase(1),
            outcome: phase(2),
            exited: phase(3),
        }
    }

    fn print(&self, name: &str) {
        println!(
            "  {name:<28} spawned {:.2?}  ready {:.2?}  outcome {:.2?}  exited {:.2?}",
            self.spawned, self.ready, self.outcome, self.exited
        );
    }
}

/// The worker built as usual and the same worker linked statically (`STATIC_WORKER`), one exec
/// of each in turn, so a change of the machine's load falls on both alike.
async fn time_static_pair(jobs: &ChildJob, statics: &ChildJob, n: usize) -> (Phases, Phases) {
    let (mut dynamic, mut fixed) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        dynamic.push(exec_once(jobs, "echo", i).await);
        fixed.push(exec_once(statics, "echo", i).await);
    }
    (Phases::of(dynamic), Phases::of(fixed))
}

/// Like `time_exec`, but lets the next spare finish starting between jobs (as an application
/// that does not exec back to back would see it).
async fn time_exec_spaced(jobs: &ChildJob, job: &str, kind: JobKind, n: usize) -> Duration {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        jobs.warm_up(&[kind]).await;
        let t = Instant::now();
        let p = jobs
            .exec(job, json!({ "i": i }), ExecOptions::default())
            .await
            .expect("exec");
        let outcome = p.outcome().await;
        samples.push(t.elapsed());
        assert!(outcome.is_success(), "{job}: {outcome}");
        p.exited().await;
    }
    median(samples)
}

async fn time_true(n: usize) -> Duration {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let status = tokio::process::Command::new("/bin/true")
            .status()
            .await
            .expect("/bin/true");
        samples.push(t.elapsed());
        assert!(status.success());
    }
    median(samples)
}

async fn time_raw_node(n: usize) -> Duration {
    let script = repo_root().join("tests/conformance/plain-worker.js");
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut w = WorkerCommand::new("node")
            .arg(&script)
            .node_channel(true)
            .spawn()
            .await
            .expect("node");
        let mut reader = FrameReader::new(w.channel.take().expect("channel"), 1 << 20);
        reader.next_frame().await.expect("first message");
        samples.push(t.elapsed());
        let _ = w.child.start_kill();
        let _ = w.child.wait().await;
    }
    median(samples)
}

fn main() {
    let n: usize = std::env::var("SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let dir = tempfile_dir();
    std::fs::copy(rust_worker(), dir.join("echo")).expect("copy the rust worker");
    // The same worker linked statically, for a row beside it (see the README).
    let static_worker = std::env::var_os("STATIC_WORKER").map(PathBuf::from);
    let has_static = static_worker.is_some();
    let static_dir = dir.join("static");
    if let Some(path) = static_worker {
        std::fs::create_dir_all(&static_dir).expect("static jobs folder");
        std::fs::copy(path, static_dir.join("echo")).expect("copy STATIC_WORKER");
    }
    std::fs::copy(jobs_dir().join("echo.js"), dir.join("echo_node.js")).expect("copy echo.js");
    std::fs::copy(jobs_dir().join("echo.py"), dir.join("echo_py.py")).expect("copy echo.py");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let only_native = std::env::var("ROWS").is_ok_and(|r| r == "native");
    rt.block_on(async {
        let jobs = ChildJob::new(ChildJobConfig::with_jobs_dir(&dir).handle_signals(false));
        let t_true = time_true(n).await;
        println!(
            "native (Rust SDK) exec, median of {n} of each phase, from the exec call \
             (/bin/true spawn+wait {t_true:.2?})"
        );
        if has_static {
            let statics =
                ChildJob::new(ChildJobConfig::with_jobs_dir(&static_dir).handle_signals(false));
            let (dynamic, fixed) = time_static_pair(&jobs, &statics, n).await;
            dynamic.print("worker as built");
            fixed.print("worker linked statically");
        } else {
            time_exec_phases(&jobs, "echo", n).await.print("worker");
        }
        if only_native {
            return;
        }
        let t_node_raw = time_raw_node(n).await;
        let rows = [
            ("native (Rust SDK)", time_exec(&jobs, "echo", n).await),
            ("Node job", time_exec(&jobs, "echo_node", n).await),
            ("Python job", time_exec(&jobs, "echo_py", n).await),
        ];
        println!("exec() → outcome, median of {n}, one fresh process per job");
        println!("{:<22} {:>12} {:>14}", "", "median", "vs /bin/true");
        println!(
            "{:<22} {:>12.2?} {:>13.1}x",
            "/bin/true spawn+wait", t_true, 1.0
        );
        println!(
            "{:<22} {:>12.2?} {:>13.1}x",
            "raw node spawn→1st msg",
            t_node_raw,
            t_node_raw.as_secs_f64() / t_true.as_secs_f64()
        );
        for (name, t) in rows {
            println!(
                "{:<22} {:>12.2?} {:>13.1}x",
                name,
                t,
                t.as_secs_f64() / t_true.as_secs_f64()
            );
        }
        let warm = ChildJob::new(
            ChildJobConfig::with_jobs_dir(&dir)
                .handle_signals(false)
                .warm_spare(true),
        );
        for (name, job, kind) in [
            ("Node job, warm spare", "echo_node", JobKind::Node),
            ("Python job, warm spare", "echo_py", JobKind::Python),
        ] {
            let t = time_exec_spaced(&warm, job, kind, n).await;
            println!(
                "{:<22} {:>12.2?} {:>13.1}x",
                name,
                t,
                t.as_secs_f64() / t_true.as_secs_f64()
            );
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("offload-exec-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
