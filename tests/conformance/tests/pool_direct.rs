//! The pool's direct path (`crates/pool/src/actor/direct.rs`): submissions dispatched on the
//! caller's task or thread, answers handled on the worker's reading task. What it must keep:
//! the order of a job's events before its end, submissions from a thread outside the pool's
//! runtime, and result callbacks that call the pool again (results are delivered after the
//! state's lock is released).

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::*;
use offload_pool::{ChildPool, JobResult, RunOptions};
use offload_process::Outcome;
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).unwrap()
}

/// Polls a submission once, as the Node addon does on its JavaScript thread: it must complete
/// at once (the queue has room).
fn submit_now<T>(f: impl Future<Output = T>) -> T {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the submission did not complete at once"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_progress_of_a_job_comes_before_its_end() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(2, 2).concurrency(4))
            .await
            .unwrap();
        let mut jobs = Vec::new();
        for _ in 0..24 {
            jobs.push(submit_progress(&pool, 40, 256).await);
        }
        for (job, events) in jobs {
            expect_progress_then_end(job, events, 40).await;
        }
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_submitted_from_a_thread_outside_the_runtime_keeps_its_timeout() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(1, 2)).await.unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel::<JobResult>();
        let p = pool.clone();
        // A plain thread (no tokio context), like the Node addon's JavaScript thread: its
        // submissions go through the actor's channel (the direct path is for tasks of the
        // runtime), the first times out, the second waits for a second worker.
        std::thread::spawn(move || {
            let (t1, t2) = (tx.clone(), tx);
            submit_now(
                p.run_raw_then(
                    "sleep",
                    raw(r#"{"ms": 60000}"#),
                    RunOptions::default()
                        .timeout(Duration::from_millis(200))
                        .max_attempts(1),
                    Box::new(move |r| {
                        let _ = t1.send(r);
                    }),
                ),
            )
            .unwrap();
            submit_now(p.run_raw_then(
                "echo",
                raw(r#"{"x": 1}"#),
                RunOptions::default(),
                Box::new(move |r| {
                    let _ = t2.send(r);
                }),
            ))
            .unwrap();
        })
        .join()
        .unwrap();
        let mut outcomes = vec![
            rx.recv().await.unwrap().outcome,
            rx.recv().await.unwrap().outcome,
        ];
        outcomes.sort_by_key(|o| matches!(o, Outcome::TimedOut));
        assert_eq!(
            outcomes,
            [
                Outcome::Succeeded {
                    value: json!({"x": 1})
                },
                Outcome::TimedOut
            ]
        );
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_callback_may_submit_the_next_job_itself() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(1, 1)).await.unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
        // Each result's callback submits the next job from where it runs (the worker's reading
        // task on the direct path): a chain of 50 that deadlocks if a result were delivered
        // under the pool's lock.
        fn chain(pool: ChildPool, i: u64, tx: mpsc::UnboundedSender<u64>) {
            let p = pool.clone();
            let submitted = submit_now(pool.run_raw_then(
                "echo",
                raw(&format!(r#"{{"i": {i}}}"#)),
                RunOptions::default(),
                Box::new(move |r: JobResult| {
                    let Outcome::Succeeded { value } = r.outcome else {
                        panic!("expected a success, got {}", r.outcome);
                    };
                    let i = value["i"].as_u64().unwrap();
                    let _ = tx.send(i);
                    if i < 49 {
                        chain(p, i + 1, tx);
                    }
                }),
            ));
            submitted.unwrap();
        }
        chain(pool.clone(), 0, tx);
        for i in 0..50 {
            assert_eq!(rx.recv().await.unwrap(), i);
        }
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}
