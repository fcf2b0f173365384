//! Issue 11, row 1: a huge timeout must never panic a supervisor. Options are refused with a
//! typed error naming the field and the limit; whatever still reaches a timer is clamped.

mod common;

use std::time::Duration;

use common::*;
use offload_pool::{ChildPool, PoolConfig, PoolError, RunOptions, WorkerKind};
use offload_process::{
    start_process, timer, ExecError, ExecOptions, Outcome, ProcessOptions, WorkerCommand,
};
use serde_json::json;

const GUARD: Duration = Duration::from_secs(60);

async fn guarded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f).await.expect("the test hung")
}

/// `"timeout_ms": 100000000000` used to panic the pool actor in `DelayQueue::insert`; every
/// later job then ended "the pool is gone".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_job_timeout_is_refused_and_the_pool_keeps_working() {
    guarded(async {
        let pool = ChildPool::start(
            PoolConfig::new(WorkerKind::Program(RUST_WORKER.into()), fixtures())
                .size(1, 1)
                .handle_signals(false),
        )
        .await
        .unwrap();
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
    let err = ChildPool::start(
        PoolConfig::new(WorkerKind::Program(RUST_WORKER.into()), fixtures())
            .job_timeout(Duration::from_millis(100_000_000_000))
            .handle_signals(false),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("job_timeout"), "{text}");
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
