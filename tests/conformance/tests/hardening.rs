//! Issue 11: a supervisor cannot die of one job. Row 1: a huge timeout never panics (options
//! are refused with a typed error naming the field and the limit; whatever still reaches a timer
//! is clamped). Deliverable 2: a panicking pool actor fails its jobs, kills its workers, restarts.

mod common;

use std::time::Duration;

use common::*;
use offload_pool::{
    Algorithm, ChildPool, PoolConfig, PoolError, RunOptions, WorkerKind, MAX_BINDINGS,
    MAX_KEY_BYTES, MAX_WORKERS,
};
use offload_process::{
    start_process, timer, ExecError, ExecOptions, Outcome, ProcessOptions, WorkerCommand,
};
use serde_json::json;

/// A pool of the Rust fixture worker that leaves the test's signals alone.
fn rust_pool() -> PoolConfig {
    PoolConfig::new(WorkerKind::Program(RUST_WORKER.into()), fixtures()).handle_signals(false)
}

/// `"timeout_ms": 100000000000` used to panic the pool actor in `DelayQueue::insert`; every
/// later job then ended "the pool is gone".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_job_timeout_is_refused_and_the_pool_keeps_working() {
    guarded(async {
        let pool = ChildPool::start(rust_pool().size(1, 1)).await.unwrap();
        let before = pool.pids();
        let huge = Duration::from_millis(100_000_000_000);
        let err = pool
            .run_with("echo", json!(1), RunOptions::default().timeout(huge))
            .await
            .unwrap_err();
        match &err {
            PoolError::OutOfRange(e) => {
                assert_eq!(e.field, "timeout");
                assert_eq!(e.limit, timer::MAX_DURATION);
            }
            other => panic!("expected OutOfRange, got {other:?}"),
        }
        // The largest accepted timeout reaches the actor's timers and is served.
        let ok = pool
            .run_with(
                "echo",
                json!(2),
                RunOptions::default().timeout(timer::MAX_DURATION),
            )
            .await
            .unwrap();
        assert_eq!(
            ok.result().await.outcome,
            Outcome::Succeeded { value: json!(2) }
        );
        let next = pool.run("echo", json!(3)).await.unwrap();
        assert_eq!(
            next.result().await.outcome,
            Outcome::Succeeded { value: json!(3) }
        );
        assert_eq!(pool.pids(), before, "the worker was not replaced");
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_config_with_an_absurd_timeout_is_refused() {
    let err = ChildPool::start(rust_pool().job_timeout(Duration::from_millis(100_000_000_000)))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("job_timeout"), "{text}");
}

/// An affinity key is bounded ([`MAX_KEY_BYTES`]): a longer one is refused before the job is
/// queued (a run and `bound_child` alike), naming the limit; one at the limit binds as usual.
#[tokio::test]
async fn an_affinity_key_past_max_key_bytes_is_refused_naming_the_limit() {
    guarded(async {
        let pool = ChildPool::start(rust_pool().size(1, 1)).await.unwrap();
        let pids = pool.pids();
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        let want = PoolError::KeyTooLong {
            len: MAX_KEY_BYTES + 1,
            limit: MAX_KEY_BYTES,
        };
        let err = pool
            .run_with("echo", json!(1), RunOptions::default().key(long.clone()))
            .await
            .expect_err("refused");
        assert_eq!(err, want);
        assert_eq!(err.code(), "InvalidArgument");
        assert!(err.to_string().contains("MAX_KEY_BYTES"), "{err}");
        assert_eq!(pool.bound_child(&long).await.err(), Some(want));
        let at_limit = "k".repeat(MAX_KEY_BYTES);
        let bound = pool
            .bound_child(&at_limit)
            .await
            .unwrap()
            .expect("a worker");
        let r = pool
            .run_with("echo", json!(2), RunOptions::default().key(at_limit))
            .await
            .unwrap()
            .result()
            .await;
        assert!(r.outcome.is_success(), "{:?}", r.outcome);
        assert_eq!(r.attempts.last().map(|a| a.pid), Some(bound.pid()));
        pool.shutdown(Duration::from_secs(5)).await;
        assert_all_gone(&pids).await;
    })
    .await;
}

/// The affinity table's bound (`MAX_BINDINGS`) never forgets a key whose job is in flight:
/// past it, the key is still bound to the worker running that job. (It forgot the least
/// recently used keys whatever ran: the key was then bound again, here to the idle worker, and
/// its next job ran beside the first.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_with_a_job_in_flight_keeps_its_worker_past_max_bindings() {
    guarded(async {
        let cfg = rust_pool()
            .size(2, 2)
            .algorithm(Algorithm::MinimumConnection);
        let pool = ChildPool::start(cfg).await.unwrap();
        let pids = pool.pids();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = std::sync::Mutex::new(Some(tx));
        let opts = RunOptions::default().key("held").on_start(move |pid| {
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(pid);
            }
        });
        let held = pool
            .run_with("sleep", json!({ "ms": 60_000 }), opts)
            .await
            .unwrap();
        let runs_on = rx.await.unwrap();
        // Enough new keys for two passes of forgetting (a quarter of the bound each).
        for i in 0..(MAX_BINDINGS + MAX_BINDINGS / 2) {
            pool.bound_child(&format!("k{i}")).await.unwrap();
        }
        let bound = pool.bound_child("held").await.unwrap().map(|p| p.pid());
        assert_eq!(bound, Some(runs_on), "bound where its job runs");
        held.cancel();
        pool.shutdown(Duration::from_secs(5)).await;
        assert_all_gone(&pids).await;
    })
    .await;
}

/// `resize(1_000_000_000)` used to grow the pool's slot table to a billion entries: the host
/// took 12 GB and hung, and no worker started. A size above `MAX_WORKERS` is refused, naming
/// the limit, and changes nothing; so is a pool configured above it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resize_above_max_workers_is_refused_and_changes_nothing() {
    guarded(async {
        let pool = ChildPool::start(rust_pool().size(1, 2)).await.unwrap();
        let before = pool.pids();
        for n in [MAX_WORKERS + 1, 1_000_000_000, usize::MAX] {
            let err = pool.resize(n).await.unwrap_err();
            assert_eq!(
                err,
                PoolError::TooManyWorkers {
                    asked: n,
                    limit: MAX_WORKERS
                }
            );
            assert_eq!(err.code(), "InvalidArgument");
            assert!(err.to_string().contains("1024"), "{err}");
        }
        assert_eq!(pool.pids(), before);
        let r = pool.run("echo", json!(7)).await.unwrap().result().await;
        assert!(r.outcome.is_success(), "{:?}", r.outcome);
        pool.shutdown(Duration::from_secs(5)).await;
        assert_all_gone(&before).await;
    })
    .await;
    for (min, max) in [(0, MAX_WORKERS + 1), (1, usize::MAX)] {
        let err = ChildPool::start(rust_pool().size(min, max))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("MAX_WORKERS") && text.contains("1024"),
            "{text}"
        );
    }
}

/// `("A=B", "x")` in a job's or a pool's `env` used to set `A` to `B=x`; an empty name or a
/// NUL failed only at spawn. Each is refused before anything starts, naming the variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_variable_that_cannot_be_set_as_written_is_refused() {
    let (_dir, jobs) = native_jobs(&["echo"]);
    for (name, value) in [("A=B", "x"), ("", "x"), ("A", "x\0y")] {
        let opts = ExecOptions::default().env(name, value);
        let err = jobs.exec("echo", json!(1), opts).await.unwrap_err();
        assert!(
            matches!(err, ExecError::Env(ref e) if e.name == name),
            "{err:?}"
        );
        assert_eq!(err.code(), "InvalidArgument");
        let mut cfg = rust_pool().size(1, 1);
        cfg.env = vec![(name.to_owned(), value.to_owned())];
        let text = ChildPool::start(cfg).await.unwrap_err().to_string();
        assert!(text.contains("environment variable"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_job_refuses_an_absurd_timeout() {
    let (_dir, jobs) = native_jobs(&["echo"]);
    let err = jobs
        .exec(
            "echo",
            json!(1),
            ExecOptions::default().timeout(Duration::MAX),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExecError::OutOfRange(ref e) if e.field == "timeout"),
        "{err}"
    );
}

/// The layer below validates nothing: a `Duration::MAX` timeout is clamped, not a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_with_duration_max_timers_still_runs() {
    guarded(async {
        let mut opts = ProcessOptions::default();
        opts.timeout = Some(Duration::MAX);
        opts.cancel_grace = Duration::MAX;
        opts.linger = Duration::MAX;
        let p = start_process(WorkerCommand::new(RUST_WORKER), opts)
            .await
            .unwrap();
        assert!(
            p.ready().await.is_some(),
            "the worker answered its handshake"
        );
        let outcome = p.kill_with(libc::SIGKILL, Duration::MAX).await;
        assert!(!p.is_running(), "{outcome}");
        p.exited().await;
        assert!(!alive(p.pid()));
    })
    .await;
}

/// Deliverable 2: a panic of the pool's actor fails its in-flight job with a typed outcome,
/// kills its workers (read from the process table) and restarts the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_pool_supervisor_fails_its_jobs_kills_its_workers_and_restarts() {
    guarded(async {
        let pool = ChildPool::start(rust_pool().size(2, 2)).await.unwrap();
        let mut pool_events = pool.events();
        let before = pool.pids();
        assert_eq!(before.len(), 2);
        let mut job = pool
            .run_with(
                "sleep",
                json!({"ms": 60_000}),
                RunOptions::default().with_events(),
            )
            .await
            .unwrap();
        let mut events = job.events().unwrap();
        loop {
            if let offload_pool::JobEvent::Started { .. } = events.recv().await.unwrap() {
                break;
            }
        }
        pool.inject_panic();
        let result = job.result().await;
        match &result.outcome {
            Outcome::Failed { name, .. } => assert_eq!(name, "SupervisorFailed"),
            other => panic!("expected SupervisorFailed, got {other}"),
        }
        // No worker of the dead incarnation is left, in the process table.
        wait_until("the old workers are gone", Duration::from_secs(20), || {
            before
                .iter()
                .all(|&p| !alive(p) && offload_process::live_group_members(p).is_empty())
        })
        .await;
        assert!(my_zombies().is_empty(), "{:?}", my_zombies());
        loop {
            if let offload_pool::PoolEvent::SupervisorRestarted {
                panics, message, ..
            } = pool_events.recv().await.unwrap()
            {
                assert_eq!(panics, 1);
                assert!(message.contains("injected fault"), "{message}");
                break;
            }
        }
        // The next job succeeds on a new incarnation's workers.
        let next = pool.run("echo", json!("after")).await.unwrap();
        let r = next.result().await;
        assert_eq!(
            r.outcome,
            Outcome::Succeeded {
                value: json!("after")
            }
        );
        assert!(!before.contains(&r.attempts[0].pid));
        assert!(pool.health().await.is_ok());
        let after = pool.pids();
        pool.shutdown(Duration::from_secs(5)).await;
        wait_until("the new workers are gone", Duration::from_secs(20), || {
            after.iter().all(|&p| !alive(p))
        })
        .await;
    })
    .await;
}

/// A process actor that panics kills its process (never orphaned) and publishes a typed
/// outcome instead of leaving its waiters hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_process_actor_kills_its_process_and_says_so() {
    guarded(async {
        let p = start_process(WorkerCommand::new(RUST_WORKER), ProcessOptions::default())
            .await
            .unwrap();
        assert!(p.ready().await.is_some());
        let pid = p.pid();
        p.inject_panic();
        match p.exited().await {
            Outcome::Failed { name, .. } => assert_eq!(name, "SupervisorFailed"),
            other => panic!("expected SupervisorFailed, got {other}"),
        }
        wait_until("the process is gone", Duration::from_secs(20), || {
            !alive(pid) && offload_process::live_group_members(pid).is_empty()
        })
        .await;
    })
    .await;
}

/// In a pool, a worker whose process actor panics is one more dead worker: its job runs again
/// on another worker and the pool replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_survives_a_panicking_process_actor() {
    guarded(async {
        let pool = ChildPool::start(
            rust_pool().size(2, 2),
        )
        .await
        .unwrap();
        let mut job = pool
            .run_with(
                "sleep",
                json!({"ms": 1500}),
                RunOptions::default().with_events(),
            )
            .await
            .unwrap();
        let mut events = job.events().unwrap();
        let first = loop {
            if let offload_pool::JobEvent::Started { pid, .. } = events.recv().await.unwrap() {
                break pid;
            }
        };
        pool.worker(first).unwrap().inject_panic();
        let result = job.result().await;
        assert_eq!(
            result.outcome,
            Outcome::Succeeded {
                value: json!("slept")
            }
        );
        assert_eq!(result.attempts[0].pid, first);
        assert!(
            matches!(&result.attempts[0].outcome, Outcome::Failed { name, .. } if name == "SupervisorFailed"),
            "{:?}",
            result.attempts[0].outcome
        );
        assert!(!alive(first));
        wait_until("the pool is back to two workers", Duration::from_secs(20), || {
            pool.pids().len() == 2
        })
        .await;
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}
