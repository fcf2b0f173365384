//! Durability across a crash: a child process submits, claims and completes jobs under load,
//! printing each id once the call returned; the test SIGKILLs it mid-load, reopens the store and
//! checks that nothing the child was told is lost. The child is this test binary run again
//! with `OFFLOAD_STORE_CRASH_CHILD` set (see `crash_child`).

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::*;
use offload_store::{Demand, JobId, JobState, SqliteStore, Store};
use serde_json::json;

const CHILD_ENV: &str = "OFFLOAD_STORE_CRASH_CHILD";
const CHILD_NODE: &str = "crash-node";

fn say(line: std::fmt::Arguments<'_>) {
    // Stdout is line-buffered: the line reaches the pipe (the kernel) before this returns.
    let mut out = std::io::stdout().lock();
    out.write_fmt(line).unwrap();
    out.write_all(b"\n").unwrap();
    out.flush().unwrap();
}

/// The child: does nothing unless run by `sigkill_loses_no_accepted_job`.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Arc::new(SqliteStore::open(Path::new(&dir)).unwrap());
        for t in 0..32 {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0.. {
                    let mut j = job("load.js", "node");
                    j.params = json!({ "t": t, "i": i });
                    let s = store.submit(vec![j], WINDOW).await.unwrap();
                    say(format_args!("submitted {}", s[0].id));
                }
            });
        }
        for _ in 0..2 {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                loop {
                    let jobs: Vec<_> = (0..10).map(|_| job("batch.js", "node")).collect();
                    for s in store.submit(jobs, WINDOW).await.unwrap() {
                        say(format_args!("submitted {}", s.id));
                    }
                }
            });
        }
        let claimer = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                loop {
                    let demand = [Demand {
                        pool: "node".into(),
                        n: 20,
                    }];
                    let claimed = store.claim(CHILD_NODE, &demand, LEASE).await.unwrap();
                    // Half of them end; the others stay running when the process dies.
                    let done: Vec<_> = claimed
                        .iter()
                        .step_by(2)
                        .map(|c| {
                            let mut d = completion(c.id, c.attempt, succeeded(json!("ok")));
                            d.node = CHILD_NODE.into();
                            d
                        })
                        .collect();
                    let ids: Vec<JobId> = done.iter().map(|d| d.id).collect();
                    store.complete(done).await.unwrap();
                    for id in ids {
                        say(format_args!("completed {id}"));
                    }
                }
            })
        };
        claimer.await.unwrap();
    });
}

#[test]
fn sigkill_loses_no_accepted_job() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut submitted = HashSet::new();
    let mut completed = HashSet::new();
    // Kill it in the middle of the load: after a few thousand answered submits and some
    // completions.
    let deadline = Instant::now() + Duration::from_secs(60);
    while submitted.len() < 3_000 || completed.len() < 100 {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the child stalled before the kill");
        take(&line, &mut submitted, &mut completed);
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    reader.join().unwrap();
    for line in rx.try_iter() {
        take(&line, &mut submitted, &mut completed);
    }
    assert!(submitted.len() >= 2_000, "only {} submits", submitted.len());
    assert!(!completed.is_empty());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(dir.path()).expect("reopen after SIGKILL");
        for id in &submitted {
            let r = store
                .get(*id)
                .await
                .unwrap_or_else(|e| panic!("accepted job {id} lost: {e}"));
            if completed.contains(id) {
                assert_eq!(r.state, JobState::Succeeded, "completion of {id} lost");
            }
        }
        // Jobs that were running come back (attempt counted) and everything completes.
        let recovered = store.recover(Some(CHILD_NODE)).await.unwrap();
        let counts = store.counts().await.unwrap();
        assert_eq!(counts.get(&("node".into(), JobState::Running)), None);
        let mut finished = 0;
        loop {
            let claimed = store
                .claim(NODE, &demand("node", 500), LEASE)
                .await
                .unwrap();
            if claimed.is_empty() {
                break;
            }
            let done = claimed
                .iter()
                .map(|c| completion(c.id, c.attempt, succeeded(json!("ok"))))
                .collect();
            finished += claimed.len();
            store.complete(done).await.unwrap();
        }
        let counts = store.counts().await.unwrap();
        let total: u64 = counts.values().sum();
        assert_eq!(
            counts.get(&("node".into(), JobState::Succeeded)),
            Some(&total),
            "every job ends: {counts:?}"
        );
        eprintln!(
            "crash test: submitted {} (answered), completed {} before the kill, recovered {recovered}, \
             finished {finished} after, {total} in the store",
            submitted.len(),
            completed.len()
        );
    });
}

/// Records one line of the child's.
fn take(line: &str, submitted: &mut HashSet<JobId>, completed: &mut HashSet<JobId>) {
    let (kind, id) = line.split_once(' ').unwrap_or(("", ""));
    // A line cut by the kill does not parse: it was never fully said, so never promised.
    let Ok(id) = JobId::parse_str(id) else { return };
    match kind {
        "submitted" => submitted.insert(id),
        "completed" => completed.insert(id),
        _ => false,
    };
}
