//! Runs pinned to one worker (`RunOptions::on_worker`, ee-core's `JobProcess.dispatch`): they
//! run there only, wait while it is busy, have one attempt, and fail with `NoSuchWorker` when
//! the worker is gone or takes no more jobs, whatever the queue holds. Real Rust workers.

use std::time::Duration;

use offload_pool::{ChildPool, KillMode, RunOptions};
use offload_process::Outcome;
use serde_json::json;

mod common;

use common::*;

fn no_such_worker(o: &Outcome) -> bool {
    matches!(o, Outcome::Failed { name, .. } if name == "NoSuchWorker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_run_runs_on_its_worker_only_and_waits_while_it_is_busy() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(2, 2)).await.unwrap();
        let pids = pool.pids();
        let (a, b) = (pids[0], pids[1]);
        // A holds a long job; a run pinned to A waits for it although B is free.
        let long = pool
            .run_with(
                "sleep",
                json!({ "ms": 300 }),
                RunOptions::default().on_worker(a),
            )
            .await
            .unwrap();
        let pinned = pool
            .run_with("echo", json!(1), RunOptions::default().on_worker(a))
            .await
            .unwrap();
        let free = pool.run("echo", json!(2)).await.unwrap().result().await;
        assert_eq!(
            free.attempts.last().map(|x| x.pid),
            Some(b),
            "B took the unpinned one"
        );
        let (long, pinned) = (long.result().await, pinned.result().await);
        assert!(long.outcome.is_success(), "{:?}", long.outcome);
        assert!(pinned.outcome.is_success(), "{:?}", pinned.outcome);
        assert_eq!(pinned.attempts.len(), 1);
        assert_eq!(pinned.attempts[0].pid, a);
        assert!(
            pinned.attempts[0].started >= long.attempts[0].ended,
            "the pinned run started after A's long job ended"
        );
        // Ten more pinned to B: all on B.
        for i in 0..10 {
            let r = pool
                .run_with("echo", json!(i), RunOptions::default().on_worker(b))
                .await
                .unwrap()
                .result()
                .await;
            assert_eq!(r.attempts.last().map(|x| x.pid), Some(b));
        }
        pool.shutdown(Duration::from_secs(5)).await;
        assert_all_gone(&pids).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_pinned_to_a_missing_or_dying_worker_fails_with_no_such_worker_once() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(1, 1).retry(offload_pool::RetryPolicy {
            max_attempts: 3,
            ..offload_pool::RetryPolicy::default()
        }))
        .await
        .unwrap();
        let a = pool.pids()[0];
        // No worker has this pid: refused at once, nothing runs.
        let r = pool
            .run_with("echo", json!(1), RunOptions::default().on_worker(1))
            .await
            .unwrap()
            .result()
            .await;
        assert!(no_such_worker(&r.outcome), "{:?}", r.outcome);
        assert!(r.attempts.is_empty());

        // A crash of its worker: one attempt, not retried elsewhere (3 attempts allowed).
        let r = pool
            .run_with("abort", json!(null), RunOptions::default().on_worker(a))
            .await
            .unwrap()
            .result()
            .await;
        assert!(
            matches!(r.outcome, Outcome::Crashed { .. }),
            "{:?}",
            r.outcome
        );
        assert_eq!(r.attempts.len(), 1);

        // Queued behind a long job on a worker that is then killed: fails, never runs elsewhere.
        wait_until("a replacement worker", Duration::from_secs(20), || {
            pool.pids().len() == 1 && pool.pids()[0] != a
        })
        .await;
        let b = pool.pids()[0];
        let long = pool
            .run_with(
                "sleep",
                json!({ "ms": 10_000 }),
                RunOptions::default().on_worker(b),
            )
            .await
            .unwrap();
        let queued = pool
            .run_with("echo", json!(2), RunOptions::default().on_worker(b))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        pool.kill_worker(
            b,
            KillMode::Hard {
                grace: Duration::ZERO,
            },
        )
        .await
        .unwrap();
        let (long, queued) = (long.result().await, queued.result().await);
        assert!(!long.outcome.is_success(), "{:?}", long.outcome);
        assert!(no_such_worker(&queued.outcome), "{:?}", queued.outcome);
        assert!(queued.attempts.is_empty(), "{:?}", queued.attempts);
        // The pool goes on.
        let r = pool.run("echo", json!(3)).await.unwrap().result().await;
        assert!(r.outcome.is_success(), "{:?}", r.outcome);
        let pids = pool.pids();
        pool.shutdown(Duration::from_secs(5)).await;
        assert_all_gone(&pids).await;
    })
    .await;
}

/// Positional arguments ride in the run's frame: past the frame limit (16 MiB by default) the
/// job fails with `FrameTooLarge` before any worker gets it, and the pool goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn args_past_the_frame_limit_fail_the_job_with_frame_too_large() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(1, 1)).await.unwrap();
        let pid = pool.pids()[0];
        let mut opts = RunOptions::default().on_worker(pid);
        opts.args = Some(vec![json!("x".repeat(17 * 1024 * 1024))]);
        let r = pool
            .run_with("echo", json!(1), opts)
            .await
            .unwrap()
            .result()
            .await;
        assert!(
            matches!(&r.outcome, Outcome::Failed { name, .. } if name == "FrameTooLarge"),
            "{:?}",
            r.outcome
        );
        assert_eq!(pool.pids(), [pid], "the worker was not touched");
        let ok = pool
            .run_with("echo", json!(2), RunOptions::default().on_worker(pid))
            .await
            .unwrap()
            .result()
            .await;
        assert!(ok.outcome.is_success(), "{:?}", ok.outcome);
        pool.shutdown(Duration::from_secs(5)).await;
        assert_all_gone(&[pid]).await;
    })
    .await;
}
