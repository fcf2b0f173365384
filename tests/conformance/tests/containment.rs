//! Issue 11, row 13 (deliverable 10): when a job ends in a resident pool worker, what it
//! started and left behind is killed, while the worker lives on. With a cgroup per worker even
//! a grandchild that calls `setsid`, ignores SIGTERM and scrubs its environment is found; the
//! fallback (process group and environment markers) finds one that keeps its markers.
//! Everything is checked in the process table.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use offload_pool::{ChildPool, PoolConfig, RunOptions, WorkerKind};
use offload_process::{Outcome, WORKER_ENV};
use serde_json::json;

/// A Node job that starts `params.cmd` detached (its own session), waits until it wrote its
/// pid to `params.pidfile`, and returns.
const LEAVE_BEHIND: &str = r#"'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
module.exports = async function leaveBehind(params) {
  const argv = params.scrub
    ? ['env', '-i', 'setsid', 'sh', '-c', params.script]
    : ['setsid', 'sh', '-c', params.script];
  const child = spawn(argv[0], argv.slice(1), {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, PIDFILE: params.pidfile },
  });
  child.unref();
  for (let i = 0; i < 2000 && !fs.existsSync(params.pidfile); i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  return 'left';
};
"#;

/// The grandchild: ignores SIGTERM, writes its pid, sleeps. Under `env -i` it has no
/// `$PIDFILE`, so the path is baked into the script.
fn script(pidfile: &Path) -> String {
    let p = pidfile.display();
    format!("trap '' TERM; echo $$ > {p}.tmp; mv {p}.tmp {p}; exec sleep 1000")
}

fn jobs_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leave-behind.js"), LEAVE_BEHIND).unwrap();
    dir
}

fn node_pool(jobs: &Path, cgroups: bool) -> PoolConfig {
    PoolConfig::new(WorkerKind::Node, jobs)
        .size(1, 1)
        .cgroups(cgroups)
        .handle_signals(false)
}

/// The process's environment, `None` when it is gone (or a zombie: its environ is empty).
fn environ(pid: u32) -> Option<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .ok()
        .filter(|e| !e.is_empty())
}

fn env_has(environ: &[u8], key: &str) -> bool {
    environ
        .split(|&b| b == 0)
        .any(|kv| kv.starts_with(format!("{key}=").as_bytes()))
}

fn environ_has(pid: u32, key: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|e| {
            e.split(|&b| b == 0)
                .any(|kv| kv.starts_with(format!("{key}=").as_bytes()))
        })
        .unwrap_or(false)
}

fn session_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command: state, ppid, pgrp, session.
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

/// The cgroup2 mount point, if a writable cgroup2 hierarchy exists.
fn writable_cgroup2() -> Result<PathBuf, String> {
    if std::env::var_os(offload_process::NO_CGROUP_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
        return Err(format!("{} is set", offload_process::NO_CGROUP_ENV));
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let mount = info
        .lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split_whitespace().next()? == "cgroup2")
                .then(|| left.split_whitespace().nth(4))?
        })
        .ok_or("no cgroup2 hierarchy is mounted")?;
    let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
    let own = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no cgroup v2 membership")?
        .to_owned();
    let dir = Path::new(mount).join(own.trim_start_matches('/'));
    let probe = dir.join(format!("offload-test-probe-{}", std::process::id()));
    std::fs::create_dir(&probe).map_err(|e| format!("{} is not writable: {e}", dir.display()))?;
    std::fs::remove_dir(&probe).map_err(|e| e.to_string())?;
    Ok(PathBuf::from(mount))
}

/// The cgroup v2 directory of `pid`, relative to the hierarchy's root.
fn cgroup_of(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
}

async fn leave_one_behind(pool: &ChildPool, dir: &Path, scrub: bool, n: u32) -> (u32, u32) {
    let pidfile = dir.join(format!("leftover-{n}.pid"));
    let mut job = pool
        .run_with(
            "leave-behind",
            json!({"scrub": scrub, "script": script(&pidfile), "pidfile": pidfile}),
            RunOptions::default().with_events(),
        )
        .await
        .unwrap();
    let mut events = job.events().unwrap();
    let result = job.result().await;
    assert_eq!(
        result.outcome,
        Outcome::Succeeded {
            value: json!("left")
        }
    );
    let worker = result.attempts[0].pid;
    drop(events.try_recv());
    let grandchild = read_pids(&pidfile)[0];
    (worker, grandchild)
}

/// (a) With cgroups: a grandchild in its own session, ignoring SIGTERM, with an empty
/// environment, is killed when the job ends; the worker is the same afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_cgroups_a_scrubbed_setsid_grandchild_dies_with_its_job_and_the_worker_lives() {
    let hierarchy = match writable_cgroup2() {
        Ok(dir) => dir,
        Err(reason) => {
            eprintln!("SKIPPED: no writable cgroup v2 hierarchy on this machine ({reason})");
            return;
        }
    };
    guarded(async {
        let jobs = jobs_folder();
        let pool = ChildPool::start(node_pool(jobs.path(), true))
            .await
            .unwrap();
        let worker = pool.pids()[0];
        assert!(
            pool.worker(worker).unwrap().has_cgroup(),
            "a writable cgroup2 exists at {} but the worker has no cgroup",
            hierarchy.display()
        );
        let cgroup = cgroup_of(worker).unwrap();
        assert!(cgroup.contains("/offload-"), "{cgroup}");
        let (ran_on, grandchild) = leave_one_behind(&pool, jobs.path(), true, 1).await;
        assert_eq!(ran_on, worker);
        // It escaped every other layer: another session, no marker at all.
        if alive(grandchild) {
            assert!(!environ_has(grandchild, WORKER_ENV));
            assert_ne!(session_of(grandchild), session_of(worker));
        }
        wait_until(
            "the job's leftover is killed",
            Duration::from_secs(20),
            || !alive(grandchild),
        )
        .await;
        assert!(alive(worker), "the worker lives on");
        assert_eq!(pool.pids(), vec![worker]);
        // The same worker serves the next job, and its leftover goes the same way.
        let (again, second) = leave_one_behind(&pool, jobs.path(), true, 2).await;
        assert_eq!(again, worker);
        wait_until(
            "the second leftover is killed",
            Duration::from_secs(20),
            || !alive(second),
        )
        .await;
        pool.shutdown(Duration::from_secs(5)).await;
        wait_until("the worker is gone", Duration::from_secs(20), || {
            !alive(worker)
        })
        .await;
        // No empty cgroup directory is left behind.
        let dir = hierarchy.join(cgroup.trim_start_matches('/'));
        wait_until(
            "the worker's cgroup is removed",
            Duration::from_secs(20),
            || !dir.exists(),
        )
        .await;
    })
    .await;
}

/// (b) The fallback forced (`cgroups(false)`): a grandchild that left the group and ignores
/// SIGTERM but keeps its environment markers is killed at the end of the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cgroups_a_marked_setsid_grandchild_dies_with_its_job() {
    guarded(async {
        let jobs = jobs_folder();
        let pool = ChildPool::start(node_pool(jobs.path(), false))
            .await
            .unwrap();
        let worker = pool.pids()[0];
        assert!(!pool.worker(worker).unwrap().has_cgroup());
        let (ran_on, grandchild) = leave_one_behind(&pool, jobs.path(), false, 1).await;
        assert_eq!(ran_on, worker);
        // The sweep may kill it at any moment: an empty environment means it is gone already
        // (a zombie's environ is empty), not that it had no marker.
        if let Some(env) = environ(grandchild) {
            assert!(
                env_has(&env, WORKER_ENV),
                "the leftover carries the worker marker"
            );
            assert_ne!(session_of(grandchild), session_of(worker));
        }
        wait_until(
            "the job's leftover is killed",
            Duration::from_secs(20),
            || !alive(grandchild),
        )
        .await;
        assert!(alive(worker), "the worker lives on");
        let (again, second) = leave_one_behind(&pool, jobs.path(), false, 2).await;
        assert_eq!(again, worker, "the same worker ran the next job");
        wait_until(
            "the second leftover is killed",
            Duration::from_secs(20),
            || !alive(second),
        )
        .await;
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

/// `ChildJob` with cgroups: killing a one-shot job also kills a grandchild that escaped the
/// group, the session and the markers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_cgroups_a_killed_child_job_takes_its_scrubbed_grandchild() {
    if let Err(reason) = writable_cgroup2() {
        eprintln!("SKIPPED: no writable cgroup v2 hierarchy on this machine ({reason})");
        return;
    }
    guarded(async {
        let tmp = tempfile::tempdir().unwrap();
        let pidfile = tmp.path().join("pid");
        let jobs = fixture_jobs();
        let p = jobs
            .exec(
                "scrubbed-grandchild",
                json!(null),
                offload_process::ExecOptions::default().env("PIDFILE", pidfile.to_string_lossy()),
            )
            .await
            .unwrap();
        assert!(p.has_cgroup());
        wait_until(
            "the grandchild wrote its pid",
            Duration::from_secs(10),
            || pidfile.exists(),
        )
        .await;
        let grandchild = read_pids(&pidfile)[0];
        assert!(alive(grandchild));
        assert!(!environ_has(grandchild, WORKER_ENV));
        p.kill(Duration::from_millis(200)).await;
        p.exited().await;
        wait_until("the grandchild is gone", Duration::from_secs(20), || {
            !alive(grandchild)
        })
        .await;
    })
    .await;
}

/// With cgroups, a SIGKILLed supervisor's lifeline reaper also kills what only a cgroup
/// finds, and removes the supervisor's cgroups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_cgroups_a_sigkilled_supervisor_leaves_no_scrubbed_grandchild_and_no_cgroup() {
    let mount = match writable_cgroup2() {
        Ok(m) => m,
        Err(reason) => {
            eprintln!("SKIPPED: no writable cgroup v2 hierarchy on this machine ({reason})");
            return;
        }
    };
    use tokio::io::{AsyncBufReadExt, BufReader};
    guarded(async {
        let tmp = tempfile::tempdir().unwrap();
        let pidfile = tmp.path().join("pid");
        let mut supervisor = tokio::process::Command::new(SUPERVISOR)
            .arg(fixtures())
            .arg("scrubbed-grandchild")
            .env("PIDFILE", &pidfile)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(supervisor.stdout.take().unwrap()).lines();
        let first = lines.next_line().await.unwrap().unwrap();
        let worker: u32 = first.strip_prefix("pid ").unwrap().parse().unwrap();
        wait_until(
            "the grandchild wrote its pid",
            Duration::from_secs(10),
            || pidfile.exists(),
        )
        .await;
        let grandchild = read_pids(&pidfile)[0];
        let cgroup = cgroup_of(worker).unwrap();
        let parent = Path::new(&cgroup).parent().unwrap().to_owned();
        assert!(parent.to_string_lossy().contains("/offload-"), "{cgroup}");
        supervisor.start_kill().unwrap(); // SIGKILL: no destructor, no handler runs
        supervisor.wait().await.unwrap();
        wait_until(
            "the worker and its scrubbed grandchild are gone",
            Duration::from_secs(20),
            || !alive(worker) && !alive(grandchild),
        )
        .await;
        let parent_dir = mount.join(parent.strip_prefix("/").unwrap());
        wait_until(
            "the supervisor's cgroups are removed",
            Duration::from_secs(30),
            || !parent_dir.exists(),
        )
        .await;
    })
    .await;
}
