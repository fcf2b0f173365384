//! `ChildPool::run_raw` and `run_raw_then` (the Node addon's path): params passed as JSON text
//! reach the worker unparsed (and one line), and a result callback is called exactly once
//! whatever happens to the job — answered, retried after its worker died, cancelled, timed
//! out, killed with the pool, lost with a panicked supervisor — and never for a refused submit.

mod common;

use std::time::Duration;

use common::*;
use offload_pool::{ChildPool, JobResult, PoolError, RunOptions};
use offload_process::Outcome;
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).unwrap()
}

/// A result callback, boxed.
type OnResult = Box<dyn FnOnce(JobResult) + Send>;

/// A callback that sends every result it gets (a second call would show as a second result).
fn collector() -> (impl Fn() -> OnResult, mpsc::UnboundedReceiver<JobResult>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let make = move || {
        let tx = tx.clone();
        Box::new(move |r: JobResult| {
            let _ = tx.send(r);
        }) as OnResult
    };
    (make, rx)
}

/// Nothing more arrives: every sender is gone (the callbacks were consumed or dropped).
async fn no_more(mut rx: mpsc::UnboundedReceiver<JobResult>) {
    assert!(rx.recv().await.is_none(), "a callback was called twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_params_reach_the_worker_as_written_even_across_lines() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(1, 1)).await.unwrap();
        // A line break between tokens would end the frame: the pool compacts such text.
        let text = "{\n  \"a\": [1, 2.5, \"x\\ny\"],\r\n  \"b\": {\"c\": null}\n}";
        let job = pool
            .run_raw("echo", raw(text), RunOptions::default())
            .await
            .unwrap();
        let r = job.result().await;
        assert_eq!(
            r.outcome,
            Outcome::Succeeded {
                value: json!({"a": [1, 2.5, "x\ny"], "b": {"c": null}})
            }
        );
        // One-line text goes as it is, and the worker is still in step afterwards.
        let job = pool
            .run_raw("echo", raw(r#"{"x": 17}"#), RunOptions::default())
            .await
            .unwrap();
        assert_eq!(
            job.result().await.outcome,
            Outcome::Succeeded {
                value: json!({"x": 17})
            }
        );
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_callback_is_called_once_for_answers_failures_cancels_and_timeouts() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(2, 2).concurrency(4))
            .await
            .unwrap();
        let (make, mut rx) = collector();
        for i in 0..20 {
            pool.run_raw_then(
                "echo",
                raw(&format!(r#"{{"i":{i}}}"#)),
                RunOptions::default(),
                make(),
            )
            .await
            .unwrap();
        }
        let mut seen = Vec::new();
        for _ in 0..20 {
            match rx.recv().await.unwrap().outcome {
                Outcome::Succeeded { value } => seen.push(value["i"].as_u64().unwrap()),
                other => panic!("expected a success, got {other}"),
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());

        pool.run_raw_then(
            "fail",
            raw(r#"{"message": "no"}"#),
            RunOptions::default(),
            make(),
        )
        .await
        .unwrap();
        let r = rx.recv().await.unwrap();
        assert!(matches!(r.outcome, Outcome::Failed { ref message, .. } if message == "no"));
        assert_eq!(r.attempts.len(), 1);

        let c = pool
            .run_raw_then(
                "sleep",
                raw(r#"{"ms": 60000}"#),
                RunOptions::default(),
                make(),
            )
            .await
            .unwrap();
        c.cancel();
        assert_eq!(rx.recv().await.unwrap().outcome, Outcome::Cancelled);

        pool.run_raw_then(
            "sleep",
            raw(r#"{"ms": 60000}"#),
            RunOptions::default()
                .timeout(Duration::from_millis(200))
                .max_attempts(1),
            make(),
        )
        .await
        .unwrap();
        assert_eq!(rx.recv().await.unwrap().outcome, Outcome::TimedOut);

        // A refused submit returns the error and never calls its callback.
        let refused = pool
            .run_raw_then("../escape", raw("1"), RunOptions::default(), make())
            .await;
        assert!(
            matches!(refused, Err(PoolError::InvalidJob(_))),
            "{refused:?}"
        );

        pool.shutdown(Duration::from_secs(5)).await;
        drop(make);
        no_more(rx).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_job_whose_worker_dies_is_retried_and_its_callback_gets_the_retry() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(2, 2)).await.unwrap();
        let mut events = pool.events();
        let (make, mut rx) = collector();
        pool.run_raw_then(
            "sleep",
            raw(r#"{"ms": 1500}"#),
            RunOptions::default().max_attempts(2),
            make(),
        )
        .await
        .unwrap();
        let pid = loop {
            if let offload_pool::PoolEvent::Job(offload_pool::JobEvent::Started { pid, .. }) =
                events.recv().await.unwrap()
            {
                break pid;
            }
        };
        assert!(offload_process::signal_group(pid, 9).unwrap());
        let r = rx.recv().await.unwrap();
        assert_eq!(
            r.outcome,
            Outcome::Succeeded {
                value: json!("slept")
            }
        );
        assert_eq!(r.attempts.len(), 2);
        assert_eq!(r.attempts[0].pid, pid);
        assert_ne!(r.attempts[1].pid, pid);
        pool.shutdown(Duration::from_secs(5)).await;
        drop(make);
        no_more(rx).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_jobs_killed_with_the_pool_or_lost_with_its_supervisor_still_get_their_callback() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(1, 1)).await.unwrap();
        let (make, mut rx) = collector();
        let mut events = pool.events();
        pool.run_raw_then(
            "sleep",
            raw(r#"{"ms": 60000}"#),
            RunOptions::default(),
            make(),
        )
        .await
        .unwrap();
        loop {
            if let offload_pool::PoolEvent::Job(offload_pool::JobEvent::Started { .. }) =
                events.recv().await.unwrap()
            {
                break;
            }
        }
        pool.inject_panic();
        match rx.recv().await.unwrap().outcome {
            Outcome::Failed { name, .. } => assert_eq!(name, "SupervisorFailed"),
            other => panic!("expected SupervisorFailed, got {other}"),
        }

        // The restarted pool takes raw jobs; kill ends the running one with a result.
        let r = pool
            .run_raw("echo", raw("3"), RunOptions::default())
            .await
            .unwrap();
        assert_eq!(
            r.result().await.outcome,
            Outcome::Succeeded { value: json!(3) }
        );
        for _ in 0..3 {
            pool.run_raw_then(
                "sleep",
                raw(r#"{"ms": 60000}"#),
                RunOptions::default(),
                make(),
            )
            .await
            .unwrap();
        }
        let pids = pool.pids();
        pool.kill().await;
        for _ in 0..3 {
            let r = rx.recv().await.unwrap();
            assert!(!r.outcome.is_success(), "{}", r.outcome);
        }
        wait_until("the workers are gone", Duration::from_secs(10), || {
            pids.iter().all(|&p| !alive(p))
        })
        .await;
        drop(make);
        no_more(rx).await;
    })
    .await;
}
