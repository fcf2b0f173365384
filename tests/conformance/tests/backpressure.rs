//! Backpressure for a worker's events (`crates/process/src/flow.rs`): with
//! `event_backpressure(n)`, a reader slower than the worker gets every progress, event and log
//! line, in order, while at most `n` of them wait in the supervisor; a job whose events nobody
//! takes still ends by its timeout. Real Node workers and a real shell flood.

use std::time::Duration;

use offload_pool::{ChildPool, JobEvent, PoolConfig, RunOptions, WorkerKind};
use offload_process::{ChildJob, ChildJobConfig, ExecOptions, Outcome, ProcessEvent};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

mod common;

use common::*;

/// A reader slower than any worker: about 20 µs per event, on this task's thread.
fn slow() {
    std::thread::sleep(Duration::from_micros(20));
}

/// Reads a run's events to its end, checking that progress `{i}` comes for i = 0, 1, … with
/// nothing lost; calls `each` after each one. Answers how many came.
async fn progress_in_order(
    mut events: tokio::sync::broadcast::Receiver<JobEvent>,
    each: impl Fn(),
) -> u64 {
    let mut next = 0u64;
    loop {
        match events.recv().await {
            Ok(JobEvent::Progress { data, .. }) => {
                assert_eq!(data["i"], json!(next));
                next += 1;
                each();
            }
            Ok(JobEvent::Finished { .. }) | Err(RecvError::Closed) => return next,
            Ok(_) => {}
            Err(RecvError::Lagged(n)) => panic!("{n} events lost"),
        }
    }
}

fn sdk_jobs(limit: usize) -> ChildJob {
    ChildJob::new(
        ChildJobConfig::with_jobs_dir(offload_conformance::jobs_dir())
            .handle_signals(false)
            .event_backpressure(limit),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_job_delivers_every_progress_to_a_slow_reader_and_buffers_at_most_the_bound() {
    guarded(async {
        let count = 5_000;
        let jobs = sdk_jobs(16);
        let p = jobs
            .exec(
                "progress.js",
                json!({ "count": count }),
                ExecOptions::default(),
            )
            .await
            .unwrap();
        let mut events = p.events();
        let (mut next, mut most_waiting) = (0u64, 0usize);
        loop {
            most_waiting = most_waiting.max(events.len());
            match events.recv().await {
                Ok(ProcessEvent::Progress { data, .. }) => {
                    assert_eq!(data["i"], json!(next), "in the order sent");
                    next += 1;
                    slow();
                }
                Ok(ProcessEvent::Exited { outcome, .. }) => {
                    assert_eq!(
                        outcome,
                        Outcome::Succeeded {
                            value: json!(count)
                        }
                    );
                    break;
                }
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(next, count, "every progress arrived");
        // The bound, plus the few lifecycle events (spawned, ready, the exit) that take none.
        assert!(
            most_waiting <= 16 + 4,
            "{most_waiting} events waited at once"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_output_line_reaches_a_slow_reader() {
    guarded(async {
        // The shell fixture prints 20,000 lines, then one 1 MiB line, then exits 3.
        let jobs = ChildJob::new(
            ChildJobConfig::with_jobs_dir(fixtures())
                .handle_signals(false)
                .event_backpressure(8),
        );
        let p = jobs
            .exec("flood", serde_json::Value::Null, ExecOptions::default())
            .await
            .unwrap();
        let mut events = p.events();
        let mut lines = 0usize;
        loop {
            match events.recv().await {
                Ok(ProcessEvent::Log { line, .. }) => {
                    if lines < 20_000 {
                        assert_eq!(line, format!("flood line {lines}"));
                    }
                    lines += 1;
                    slow();
                }
                Ok(ProcessEvent::Exited { outcome, .. }) => {
                    assert_eq!(outcome, Outcome::Exited { code: 3 });
                    break;
                }
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(lines, 20_001, "every line, and the cut one");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_run_delivers_every_event_to_a_slow_reader() {
    guarded(async {
        let count = 3_000;
        let cfg = PoolConfig::new(WorkerKind::Node, offload_conformance::jobs_dir())
            .size(1, 1)
            .handle_signals(false)
            .event_backpressure(8);
        let pool = ChildPool::start(cfg).await.unwrap();
        let opts = RunOptions::default().with_events();
        // Two runs at once on the one worker: each gets all of its own, in order.
        let mut a = pool
            .run_with("progress", json!({ "count": count }), opts.clone())
            .await
            .unwrap();
        let mut b = pool
            .run_with("progress", json!({ "count": count }), opts)
            .await
            .unwrap();
        for h in [&mut a, &mut b] {
            let events = h.events().expect("asked for events");
            assert_eq!(progress_in_order(events, slow).await, count);
        }
        assert_eq!(
            a.result().await.outcome,
            Outcome::Succeeded {
                value: json!(count)
            }
        );
        assert_eq!(
            b.result().await.outcome,
            Outcome::Succeeded {
                value: json!(count)
            }
        );
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

/// While its reader waits, a job that awaits `sent()` after each frame (Rust SDK:
/// `Context::sent`, Node SDK: `ctx.sent()`) waits too: its own memory stays near the SDK's
/// `SEND_HIGH_WATER` (1 MiB) instead of holding every frame it sent (the same job without
/// `sent()` is the control: it grows by most of what it sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_job_that_awaits_sent_keeps_its_memory_bounded_while_its_reader_waits() {
    paced_job_stays_bounded(rust_pool(1, 1), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_job_that_awaits_sent_keeps_its_memory_bounded_while_its_reader_waits() {
    let cfg = PoolConfig::new(WorkerKind::Node, offload_conformance::jobs_dir())
        .size(1, 1)
        .handle_signals(false);
    paced_job_stays_bounded(cfg, Some(false)).await;
}

/// The same through the Node SDK's fallback, `process.send` per frame (under
/// `--pending-deprecation` it does not reach below Node's public API).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_job_on_process_send_that_awaits_sent_keeps_its_memory_bounded() {
    let mut cfg = PoolConfig::new(WorkerKind::Node, offload_conformance::jobs_dir())
        .size(1, 1)
        .handle_signals(false);
    cfg.env
        .push(("NODE_OPTIONS".into(), "--pending-deprecation".into()));
    paced_job_stays_bounded(cfg, Some(true)).await;
}

/// `fallback`: for Node workers, whether the SDK must be on its `process.send` fallback.
async fn paced_job_stays_bounded(cfg: PoolConfig, fallback: Option<bool>) {
    guarded(async {
        // 125 MiB in all: well above what a garbage-collected worker's heap may grow by anyway
        // (Node's young generation takes tens of MiB of the frames' JSON before it collects).
        let (count, bytes) = (4_000u64, 32 * 1024);
        let sent_mib = count * bytes as u64 / (1024 * 1024);
        let pool = ChildPool::start(cfg.event_backpressure(16)).await.unwrap();
        for paced in [true, false] {
            let mut h = pool
                .run_with(
                    "paced",
                    json!({ "count": count, "bytes": bytes, "paced": paced }),
                    RunOptions::default().with_events(),
                )
                .await
                .unwrap();
            let events = h.events().expect("asked for events");
            // The reader is away: the worker's channel fills, then the job waits (or buffers).
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let got = progress_in_order(events, || {}).await;
            assert_eq!(got, count, "every progress arrived");
            let r = h.result().await;
            let Outcome::Succeeded { value } = &r.outcome else {
                panic!("{:?}", r.outcome)
            };
            if let Some(f) = fallback {
                assert_eq!(value["fallback"], json!(f), "{value}");
            }
            let grew_mib =
                (value["peak"].as_u64().unwrap() - value["before"].as_u64().unwrap()) / 1024;
            eprintln!("paced {paced}: the worker grew {grew_mib} MiB, {sent_mib} MiB sent");
            if paced {
                assert!(
                    grew_mib < sent_mib / 2,
                    "paced: the worker grew by {grew_mib} MiB while {sent_mib} MiB were sent"
                );
            } else {
                assert!(
                    grew_mib > sent_mib * 3 / 4,
                    "the control should buffer most of its {sent_mib} MiB: grew {grew_mib} MiB"
                );
            }
        }
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_events_nobody_takes_still_times_out() {
    guarded(async {
        let jobs = sdk_jobs(4);
        let mut opts = ExecOptions::default().timeout(Duration::from_millis(300));
        opts.cancel_grace = Duration::from_millis(200);
        // Progress in a loop that never yields, to a subscriber that never reads: the reading
        // stops at 4 events, the worker blocks on its full socket, the timeout still ends it.
        let p = jobs
            .exec("progress.js", json!({ "count": 100_000_000u64 }), opts)
            .await
            .unwrap();
        let _unread = p.events();
        assert_eq!(p.exited().await, Outcome::TimedOut);
        assert!(offload_process::live_group_members(p.pid()).is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_a_small_stream_of_its_own_never_holds_the_worker() {
    guarded(async {
        // The executor's calls without a watcher: a stream of explicit capacity, read only at
        // the end. With backpressure on the pool it stays lossy: its 3,000 events must not
        // stop the worker's channel at the bound (8).
        let cfg = PoolConfig::new(WorkerKind::Node, offload_conformance::jobs_dir())
            .size(1, 1)
            .handle_signals(false)
            .event_backpressure(8);
        let pool = ChildPool::start(cfg).await.unwrap();
        let opts = RunOptions::default().with_events_capacity(16);
        let mut h = pool
            .run_with("progress", json!({ "count": 3_000 }), opts)
            .await
            .unwrap();
        let _unread = h.events().expect("asked for events");
        assert_eq!(
            h.result().await.outcome,
            Outcome::Succeeded {
                value: json!(3_000)
            }
        );
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test]
async fn a_pool_bound_outside_one_to_the_most_is_refused_naming_it() {
    for bad in [0, offload_process::MAX_EVENT_BACKPRESSURE + 1] {
        let cfg = PoolConfig::new(WorkerKind::Node, offload_conformance::jobs_dir())
            .size(1, 1)
            .handle_signals(false)
            .event_backpressure(bad);
        match ChildPool::start(cfg).await {
            Err(offload_pool::StartError::Config(m)) => {
                assert!(
                    m.contains("event_backpressure") && m.contains("MAX_EVENT_BACKPRESSURE"),
                    "{m}"
                );
            }
            Err(e) => panic!("{bad}: {e}"),
            Ok(_) => panic!("{bad} was accepted"),
        }
    }
}
