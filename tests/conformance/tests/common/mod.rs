//! Helpers shared by the integration tests: fixture folders and process-table readers.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use offload_conformance::repo_root;
use offload_process::{ChildJob, ChildJobConfig};

pub const RUST_WORKER: &str = env!("CARGO_BIN_EXE_conformance-worker");
pub const SUPERVISOR: &str = env!("CARGO_BIN_EXE_supervisor-fixture");

pub fn fixtures() -> PathBuf {
    repo_root().join("tests/conformance/fixtures/jobs")
}

pub fn fixture_jobs() -> ChildJob {
    ChildJob::new(ChildJobConfig::with_jobs_dir(fixtures()).handle_signals(false))
}

/// A jobs folder holding copies of the Rust fixture worker under the given names.
pub fn native_jobs(names: &[&str]) -> (tempfile::TempDir, ChildJob) {
    let dir = tempfile::tempdir().unwrap();
    for name in names {
        let target = dir.path().join(name);
        if std::fs::hard_link(RUST_WORKER, &target).is_err() {
            std::fs::copy(RUST_WORKER, &target).unwrap();
        }
    }
    let jobs = ChildJob::new(ChildJobConfig::with_jobs_dir(dir.path()).handle_signals(false));
    (dir, jobs)
}

/// Whether `pid` is a live process (a zombie counts as dead).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next());
            state != Some("Z") && state != Some("X")
        }
        Err(_) => false,
    }
}

/// Zombie children of this process.
pub fn my_zombies() -> Vec<u32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let mut fields = stat.rsplit(')').next()?.split_whitespace();
            let state = fields.next()?;
            let ppid = fields.next()?;
            (state == "Z" && ppid == me).then_some(pid)
        })
        .collect()
}

pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Waits until `cond` holds, failing after `limit` (a guard against hangs, not a timing claim).
pub async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn read_pids(file: &Path) -> Vec<u32> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// Marks a fixture script executable.
pub fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Every test gets this long before it is declared hung (a guard, not a timing claim).
pub const GUARD: Duration = Duration::from_secs(60);

/// `f`, or a panic naming a hung test after [`GUARD`].
pub async fn guarded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f).await.expect("the test hung")
}

/// A pool of `min`..=`max` Rust fixture workers.
pub fn rust_pool(min: usize, max: usize) -> offload_pool::PoolConfig {
    offload_pool::PoolConfig::new(
        offload_pool::WorkerKind::Program(RUST_WORKER.into()),
        fixtures(),
    )
    .size(min, max)
    .handle_signals(false)
}

/// Waits until every process of `pids` and of their process groups is gone.
pub async fn assert_all_gone(pids: &[u32]) {
    wait_until(
        "every worker process is gone",
        Duration::from_secs(20),
        || {
            pids.iter()
                .all(|&p| !alive(p) && offload_process::live_group_members(p).is_empty())
        },
    )
    .await;
}

// --- descriptors: this process's and a worker's (fds.rs, streams.rs) ---------------------

/// How many descriptors `pid` has open.
pub fn fds_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// What this process's descriptors point at, for a readable diff. Files in /proc are left out:
/// a pool reads them (health, load) and may keep one open; descriptors passed never are.
pub fn fd_links() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            if target.starts_with("/proc") {
                return None;
            }
            Some(format!("{:?} -> {target:?}", e.file_name()))
        })
        .collect();
    v.sort();
    v
}

/// Waits until this process holds no descriptor beyond `mine`, then asserts it (a pool's
/// tasks open files for a moment now and then — in /proc, a worker's `cgroup.procs` — so one
/// may be in `mine` and gone now, or open now and gone soon: a leak stays).
pub async fn assert_supervisor_fds(mine: &[String]) {
    let extra = || -> Vec<String> {
        fd_links()
            .into_iter()
            .filter(|l| !mine.contains(l))
            .collect()
    };
    let start = std::time::Instant::now();
    while !extra().is_empty() && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        extra(),
        Vec::<String>::new(),
        "the supervisor leaked descriptors"
    );
}

/// The one worker of a one-worker pool, after a first job (its fds are settled).
pub async fn warm(pool: &offload_pool::ChildPool) -> u32 {
    let r = pool
        .run("echo", serde_json::json!(1))
        .await
        .unwrap()
        .result()
        .await;
    assert!(r.outcome.is_success(), "{:?}", r.outcome);
    r.attempts[0].pid
}

/// Submits the `progress` fixture job (`count` progress events, then `count`), with room for
/// `capacity` events; returns it with its event stream.
pub async fn submit_progress(
    pool: &offload_pool::ChildPool,
    count: u64,
    capacity: usize,
) -> (
    offload_pool::JobHandle,
    tokio::sync::broadcast::Receiver<offload_pool::JobEvent>,
) {
    let mut job = pool
        .run_with(
            "progress",
            serde_json::json!({ "count": count }),
            offload_pool::RunOptions::default().with_events_capacity(capacity),
        )
        .await
        .unwrap();
    let events = job.events().unwrap();
    (job, events)
}

/// Reads a `progress` fixture job's events to its end: exactly `count` progress events, all
/// before the end, and a result of `count` (a progress after the end, or lost, fails).
pub async fn expect_progress_then_end(
    job: offload_pool::JobHandle,
    mut events: tokio::sync::broadcast::Receiver<offload_pool::JobEvent>,
    count: u64,
) {
    let done = offload_process::Outcome::Succeeded {
        value: serde_json::json!(count),
    };
    let mut progress = 0;
    loop {
        match events.recv().await.unwrap() {
            offload_pool::JobEvent::Progress { .. } => progress += 1,
            offload_pool::JobEvent::Finished { outcome, .. } => {
                assert_eq!(outcome, done);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(
        progress, count,
        "a progress came after the job's end, or was lost"
    );
    assert_eq!(job.result().await.outcome, done);
}
