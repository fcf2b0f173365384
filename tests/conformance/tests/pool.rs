//! ChildPool against real worker processes: deaths, timeouts, recycling, affinity, the queue
//! bound, broadcasts, spreading, start failures and shutdown. Process-table checks read /proc.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::*;
use offload_conformance::jobs_dir;
use offload_pool::{
    Algorithm, Backpressure, ChildPool, JobEvent, PoolConfig, PoolError, PoolEvent, RecyclePolicy,
    RetryPolicy, RunOptions, StartError, WorkerKind,
};
use offload_process::Outcome;
use serde_json::json;

fn sigkill(pid: u32) {
    assert!(offload_process::signal_group(pid, 9).unwrap());
}

/// The pid a job started on, read from its own event stream.
async fn started_on(events: &mut tokio::sync::broadcast::Receiver<JobEvent>) -> u32 {
    loop {
        if let JobEvent::Started { pid, .. } = events.recv().await.unwrap() {
            return pid;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_job_completes_on_another_worker() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(2, 2)).await.unwrap();
        let mut job = pool
            .run_with(
                "sleep",
                json!({"ms": 1500}),
                RunOptions::default().with_events(),
            )
            .await
            .unwrap();
        let mut events = job.events().unwrap();
        let first = started_on(&mut events).await;
        sigkill(first);
        let result = job.result().await;
        assert_eq!(
            result.outcome,
            Outcome::Succeeded {
                value: json!("slept")
            }
        );
        assert_eq!(result.attempts.len(), 2, "{:?}", result.attempts);
        assert_eq!(result.attempts[0].pid, first);
        assert_eq!(result.attempts[0].outcome, Outcome::Crashed { signal: 9 });
        assert_ne!(result.attempts[1].pid, first);
        // The pool replaced the dead worker.
        wait_until(
            "the pool is back to 2 workers",
            Duration::from_secs(10),
            || pool.pids().len() == 2 && !pool.pids().contains(&first),
        )
        .await;
        let pids = pool.pids();
        pool.shutdown(Duration::from_secs(5)).await;
        assert_all_gone(&pids).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_ignoring_its_timeout_gets_its_worker_killed_and_the_pool_keeps_serving() {
    guarded(async {
        let mut cfg = rust_pool(1, 1);
        cfg.cancel_grace = Duration::from_millis(200);
        let pool = ChildPool::start(cfg).await.unwrap();
        let before = pool.pids();
        let job = pool
            .run_with(
                "hang",
                json!(null),
                RunOptions::default()
                    .timeout(Duration::from_millis(200))
                    .max_attempts(1),
            )
            .await
            .unwrap();
        let result = job.result().await;
        assert_eq!(result.outcome, Outcome::TimedOut);
        assert_all_gone(&before).await;
        let next = pool.run("echo", json!(42)).await.unwrap().result().await;
        assert_eq!(next.outcome, Outcome::Succeeded { value: json!(42) });
        assert_ne!(
            next.attempts[0].pid, before[0],
            "the hung worker was replaced"
        );
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_job_is_retried_while_attempts_remain() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(1, 1)).await.unwrap();
        let job = pool
            .run_with(
                "sleep",
                json!({"ms": 60000}),
                RunOptions::default()
                    .timeout(Duration::from_millis(150))
                    .max_attempts(2),
            )
            .await
            .unwrap();
        let result = job.result().await;
        assert_eq!(result.outcome, Outcome::TimedOut);
        assert_eq!(result.attempts.len(), 2);
        assert!(result
            .attempts
            .iter()
            .all(|a| a.outcome == Outcome::TimedOut));
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_kills_its_workers_is_poison() {
    guarded(async {
        let mut cfg = rust_pool(1, 1);
        cfg.retry = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        cfg.poison_after = 3;
        let pool = ChildPool::start(cfg).await.unwrap();
        let result = pool.run("abort", json!(null)).await.unwrap().result().await;
        match &result.outcome {
            Outcome::Failed { name, .. } => assert_eq!(name, "PoisonJob"),
            other => panic!("{other:?}"),
        }
        assert_eq!(result.attempts.len(), 3);
        let ok = pool
            .run("echo", json!("alive"))
            .await
            .unwrap()
            .result()
            .await;
        assert!(ok.outcome.is_success(), "{:?}", ok.outcome);
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recycling_by_count_under_load_fails_no_job() {
    guarded(async {
        let cfg = rust_pool(2, 3).recycle(RecyclePolicy {
            after_jobs: Some(10),
            ..RecyclePolicy::default()
        });
        let pool = ChildPool::start(cfg).await.unwrap();
        let mut events = pool.events();
        let mut handles = Vec::new();
        for i in 0..200 {
            handles.push(pool.run("echo", json!(i)).await.unwrap());
        }
        for (i, h) in handles.into_iter().enumerate() {
            let r = h.result().await;
            assert_eq!(r.outcome, Outcome::Succeeded { value: json!(i) });
            assert_eq!(r.attempts.len(), 1);
        }
        let mut recycled = 0;
        while let Ok(ev) = events.try_recv() {
            if let PoolEvent::WorkerRecycled { .. } = ev {
                recycled += 1;
            }
        }
        assert!(
            recycled >= 10,
            "only {recycled} recycles for 200 jobs at 10 per worker"
        );
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recycling_by_rss_under_load_fails_no_job() {
    guarded(async {
        let mut cfg = rust_pool(2, 3).recycle(RecyclePolicy {
            max_rss: Some(64 << 20),
            ..RecyclePolicy::default()
        });
        cfg.health_interval = Duration::from_millis(50);
        let pool = ChildPool::start(cfg).await.unwrap();
        let mut events = pool.events();
        let mut recycled = HashSet::new();
        for round in 0..40 {
            // Each job leaks 8 MiB in its worker: a worker passes 64 MiB after ~8 jobs.
            let r = pool
                .run("grow", json!({"bytes": 8 << 20}))
                .await
                .unwrap()
                .result()
                .await;
            assert!(r.outcome.is_success(), "round {round}: {:?}", r.outcome);
            while let Ok(ev) = events.try_recv() {
                if let PoolEvent::WorkerRecycled { pid, .. } = ev {
                    recycled.insert(pid);
                }
            }
            if recycled.len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!recycled.is_empty(), "no worker was recycled for its RSS");
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_collects_an_ack_per_worker() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(3, 3)).await.unwrap();
        let acks = pool
            .broadcast("config", json!({"level": "debug"}), Duration::from_secs(5))
            .await
            .unwrap();
        let want: BTreeMap<u32, bool> = pool.pids().into_iter().map(|p| (p, true)).collect();
        assert_eq!(acks, want);
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_bound_fails_fast_or_waits() {
    guarded(async {
        let cfg = rust_pool(1, 1).queue(2, Backpressure::FailFast);
        let pool = ChildPool::start(cfg).await.unwrap();
        let mut busy = pool
            .run_with(
                "sleep",
                json!({"ms": 800}),
                RunOptions::default().with_events(),
            )
            .await
            .unwrap();
        started_on(&mut busy.events().unwrap()).await;
        let q1 = pool.run("echo", json!(1)).await.unwrap();
        let q2 = pool.run("echo", json!(2)).await.unwrap();
        let full = pool.run("echo", json!(3)).await.unwrap_err();
        assert_eq!(full, PoolError::QueueFull { bound: 2 });
        assert!(busy.result().await.outcome.is_success());
        assert!(q1.result().await.outcome.is_success());
        assert!(q2.result().await.outcome.is_success());
        pool.shutdown(Duration::from_secs(5)).await;

        // With `Wait`, the fourth submit waits for room instead of failing.
        let cfg = rust_pool(1, 1).queue(1, Backpressure::Wait);
        let pool = ChildPool::start(cfg).await.unwrap();
        let mut busy = pool
            .run_with(
                "sleep",
                json!({"ms": 300}),
                RunOptions::default().with_events(),
            )
            .await
            .unwrap();
        started_on(&mut busy.events().unwrap()).await;
        let q1 = pool.run("echo", json!(1)).await.unwrap();
        let waited = pool.run("echo", json!(2)).await.unwrap();
        assert!(q1.result().await.outcome.is_success());
        assert!(waited.result().await.outcome.is_success());
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn affinity_sticks_and_rebinds_after_a_death() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(3, 3)).await.unwrap();
        let mut seen = HashSet::new();
        for i in 0..10 {
            let r = pool
                .run_bound("session-1", "echo", json!(i))
                .await
                .unwrap()
                .result()
                .await;
            seen.insert(r.attempts[0].pid);
        }
        assert_eq!(seen.len(), 1, "one key went to several workers: {seen:?}");
        let bound = *seen.iter().next().unwrap();
        assert_eq!(
            pool.bound_child("session-1").await.unwrap().unwrap().pid(),
            bound
        );
        sigkill(bound);
        wait_until("the bound worker is gone", Duration::from_secs(10), || {
            !pool.pids().contains(&bound)
        })
        .await;
        let mut after = HashSet::new();
        for i in 0..10 {
            let r = pool
                .run_bound("session-1", "echo", json!(i))
                .await
                .unwrap()
                .result()
                .await;
            assert!(r.outcome.is_success());
            after.insert(r.attempts[0].pid);
        }
        assert_eq!(after.len(), 1, "{after:?}");
        assert!(!after.contains(&bound));
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

async fn spread(algorithm: Algorithm) -> Vec<usize> {
    let cfg = rust_pool(2, 2).concurrency(4).algorithm(algorithm);
    let pool = ChildPool::start(cfg).await.unwrap();
    let mut handles = Vec::new();
    for _ in 0..4 {
        handles.push(pool.run("sleep", json!({"ms": 300})).await.unwrap());
    }
    let mut per_pid = std::collections::HashMap::new();
    for h in handles {
        let r = h.result().await;
        assert!(r.outcome.is_success());
        *per_pid.entry(r.attempts[0].pid).or_insert(0) += 1;
    }
    pool.shutdown(Duration::from_secs(5)).await;
    let mut counts: Vec<usize> = per_pid.into_values().collect();
    counts.sort_unstable();
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimum_connection_and_p2c_spread_work_with_concurrency_above_one() {
    guarded(async {
        // 4 jobs at once on 2 workers that take 4 each: least-connections splits them evenly.
        assert_eq!(spread(Algorithm::MinimumConnection).await, vec![2, 2]);
        // p2c compares two distinct workers: with 2 workers it is least-connections too.
        assert_eq!(spread(Algorithm::P2c).await, vec![2, 2]);
        // `first` fills one worker before the next (HAProxy's first): the contrast.
        assert_eq!(spread(Algorithm::First).await, vec![4]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_first_keeps_a_second_job_off_a_busy_worker_while_one_restarts() {
    guarded(async {
        let mut cfg = rust_pool(2, 2).concurrency(2);
        cfg.spread_first = true;
        let pool = ChildPool::start(cfg).await.unwrap();
        let opts = || RunOptions::default().with_events();
        let mut long = pool
            .run_with("sleep", json!({"ms": 3000}), opts())
            .await
            .unwrap();
        let busy = started_on(&mut long.events().unwrap()).await;
        let other = pool.pids().into_iter().find(|&p| p != busy).unwrap();
        sigkill(other);
        wait_until("the pool saw the death", Duration::from_secs(10), || {
            !pool.pids().contains(&other)
        })
        .await;
        // The busy worker has a free slot, but a worker is missing: the job waits for the
        // replacement instead of queueing behind the 3 s job.
        let mut short = pool
            .run_with("sleep", json!({"ms": 1}), opts())
            .await
            .unwrap();
        let ran_on = started_on(&mut short.events().unwrap()).await;
        assert!(
            ran_on != busy && ran_on != other,
            "ran on {ran_on}, busy {busy}"
        );
        assert!(short.result().await.outcome.is_success());
        assert!(long.result().await.outcome.is_success());
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_cannot_start_fails_start_with_its_stderr() {
    guarded(async {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad-worker");
        std::fs::write(
            &bad,
            "#!/bin/sh\necho 'boom: missing config file' >&2\nexit 3\n",
        )
        .unwrap();
        make_executable(&bad);
        let err = ChildPool::start(
            PoolConfig::new(WorkerKind::Program(bad), dir.path())
                .size(2, 2)
                .handle_signals(false),
        )
        .await
        .unwrap_err();
        match err {
            StartError::WorkerDied { outcome, stderr } => {
                assert_eq!(outcome, Outcome::Exited { code: 3 });
                assert!(stderr.contains("boom: missing config file"), "{stderr}");
            }
            other => panic!("{other}"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_never_gets_ready_fails_start_after_the_timeout() {
    guarded(async {
        let dir = tempfile::tempdir().unwrap();
        let mute = dir.path().join("mute-worker");
        std::fs::write(
            &mute,
            "#!/bin/sh\necho 'waiting forever' >&2\nexec sleep 1000\n",
        )
        .unwrap();
        make_executable(&mute);
        let mut cfg = PoolConfig::new(WorkerKind::Program(mute), dir.path())
            .size(1, 1)
            .handle_signals(false);
        cfg.start_timeout = Duration::from_millis(500);
        let err = ChildPool::start(cfg).await.unwrap_err();
        match err {
            StartError::Timeout { ready, stderr, .. } => {
                assert_eq!(ready, 0);
                assert!(stderr.contains("waiting forever"), "{stderr}");
            }
            other => panic!("{other}"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_shutdown_no_process_of_the_pool_remains() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(3, 3)).await.unwrap();
        let running = pool.run("sleep", json!({"ms": 200})).await.unwrap();
        let pids = pool.pids();
        assert_eq!(pids.len(), 3);
        pool.shutdown(Duration::from_secs(5)).await;
        // The running job was allowed to finish during the drain.
        assert!(running.result().await.outcome.is_success());
        assert_all_gone(&pids).await;
        assert!(pool.pids().is_empty());
        assert_eq!(
            pool.run("echo", json!(1)).await.unwrap_err(),
            PoolError::ShuttingDown
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_past_its_deadline_kills_and_fails_what_remains() {
    guarded(async {
        let mut cfg = rust_pool(1, 1);
        cfg.kill_grace = Duration::from_millis(200);
        let pool = ChildPool::start(cfg).await.unwrap();
        let hung = pool.run("hang", json!(null)).await.unwrap();
        let queued = pool.run("echo", json!(1)).await.unwrap();
        let pids = pool.pids();
        pool.shutdown(Duration::from_millis(800)).await;
        assert!(!hung.result().await.outcome.is_success());
        match queued.result().await.outcome {
            Outcome::Failed { name, .. } => assert_eq!(name, "ShuttingDown"),
            other => panic!("{other:?}"),
        }
        assert_all_gone(&pids).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_queued_and_running_jobs() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(1, 1)).await.unwrap();
        let mut running = pool
            .run_with(
                "sleep",
                json!({"ms": 60000}),
                RunOptions::default().with_events(),
            )
            .await
            .unwrap();
        started_on(&mut running.events().unwrap()).await;
        let queued = pool.run("echo", json!(1)).await.unwrap();
        queued.cancel();
        running.cancel();
        assert_eq!(queued.result().await.outcome, Outcome::Cancelled);
        assert_eq!(running.result().await.outcome, Outcome::Cancelled);
        let after = pool.run("echo", json!(2)).await.unwrap().result().await;
        assert!(after.outcome.is_success());
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_python_pools_run_jobs_and_resize() {
    guarded(async {
        for kind in [WorkerKind::Node, WorkerKind::Python] {
            let pool = ChildPool::start(
                PoolConfig::new(kind.clone(), jobs_dir())
                    .size(1, 3)
                    .handle_signals(false),
            )
            .await
            .unwrap();
            let r = pool
                .run("echo", json!({"k": [1, 2]}))
                .await
                .unwrap()
                .result()
                .await;
            assert_eq!(
                r.outcome,
                Outcome::Succeeded {
                    value: json!({"k": [1, 2]})
                },
                "{kind:?}"
            );
            let bad = pool.run("../escape", json!(null)).await.unwrap_err();
            assert!(matches!(bad, PoolError::InvalidJob(_)), "{bad:?}");
            assert_eq!(bad.code(), "InvalidJob");
            let missing = pool.run("no_such_job", json!(null)).await.unwrap_err();
            assert!(matches!(missing, PoolError::JobNotFound(_)), "{missing:?}");
            assert_eq!(missing.code(), "JobNotFound");
            assert!(missing.to_string().contains("no_such_job"), "{missing}");
            pool.resize(3).await.unwrap();
            wait_until("three workers", Duration::from_secs(20), || {
                pool.pids().len() == 3
            })
            .await;
            let health = pool.health().await.unwrap();
            assert_eq!(health.len(), 3);
            pool.resize(1).await.unwrap();
            wait_until("one worker", Duration::from_secs(20), || {
                pool.pids().len() == 1
            })
            .await;
            let pids = pool.pids();
            pool.shutdown(Duration::from_secs(5)).await;
            assert_all_gone(&pids).await;
        }
    })
    .await;
}

/// A worker that announces itself, then never reads its channel again.
fn deaf_worker(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("deaf-worker.sh");
    std::fs::write(
        &path,
        "#!/bin/sh\nprintf '{\"type\":\"ready\",\"protocol\":1,\"concurrency\":64}\\n' >&3\nexec sleep 600\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_stops_reading_never_blocks_the_pool() {
    guarded(async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = PoolConfig::new(WorkerKind::Program(deaf_worker(dir.path())), fixtures())
            .size(1, 1)
            .concurrency(64)
            .handle_signals(false);
        let pool = ChildPool::start(cfg).await.unwrap();
        let pids = pool.pids();
        // 64 runs of 256 KiB each: far more than the socket buffer holds, so most of it waits
        // in the supervisor's write buffer for a reader that never comes.
        let big = "x".repeat(256 * 1024);
        let mut handles = Vec::new();
        for i in 0..64 {
            handles.push(pool.run("echo", json!({"i": i, "pad": big})).await.unwrap());
        }
        // The pool's actor still answers and dispatches: every job reaches the worker's
        // channel (the socket took what it holds, the rest waits in the write buffer).
        loop {
            let health = pool.health().await.unwrap();
            assert_eq!(health.len(), 1);
            if health[0].in_flight == 64 {
                break;
            }
            tokio::task::yield_now().await;
        }
        // And the worker can still be stopped, with every job ended and nothing left.
        pool.kill().await;
        for h in handles {
            assert!(!h.result().await.outcome.is_success());
        }
        assert_all_gone(&pids).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_too_large_for_a_frame_fails_at_once_and_the_pool_keeps_serving() {
    guarded(async {
        let mut cfg = rust_pool(1, 1);
        cfg.max_frame = 64 * 1024;
        let pool = ChildPool::start(cfg).await.unwrap();
        let too_large = pool
            .run("echo", json!({"pad": "x".repeat(100 * 1024)}))
            .await
            .unwrap();
        match too_large.result().await.outcome {
            Outcome::Failed { name, .. } => assert_eq!(name, "FrameTooLarge"),
            other => panic!("expected FrameTooLarge, got {other:?}"),
        }
        let ok = pool.run("echo", json!(7)).await.unwrap();
        assert!(ok.result().await.outcome.is_success());
        pool.kill().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_closes_its_channel_is_killed_and_its_job_runs_on_a_replacement() {
    guarded(async {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // The first worker announces itself, then closes its channel and lives on; the
        // replacement is the real fixture worker.
        let marker = dir.path().join("broke");
        let script = dir.path().join("closing-worker.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nif [ -e '{m}' ]; then exec '{w}'; fi\n: > '{m}'\nprintf '{{\"type\":\"ready\",\"protocol\":1}}\\n' >&3\nexec 3>&-\nexec sleep 600\n",
                m = marker.display(),
                w = RUST_WORKER,
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cfg = PoolConfig::new(WorkerKind::Program(script), fixtures())
            .size(1, 1)
            .handle_signals(false);
        let pool = ChildPool::start(cfg).await.unwrap();
        let first = pool.pids()[0];
        // Its end of the channel is closed (read from the process table).
        wait_until("the first worker closed fd 3", Duration::from_secs(10), || {
            !std::path::Path::new(&format!("/proc/{first}/fd/3")).exists()
        })
        .await;
        let job = pool.run("echo", json!(5)).await.unwrap();
        let result = job.result().await;
        assert_eq!(result.outcome, Outcome::Succeeded { value: json!(5) });
        assert_eq!(result.attempts.len(), 2, "{:?}", result.attempts);
        assert_eq!(result.attempts[0].pid, first);
        assert_all_gone(&[first]).await;
        pool.kill().await;
    })
    .await;
}
