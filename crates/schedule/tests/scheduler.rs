//! The library's scheduler on a real pool of Node workers: every policy against real runs
//! (succeeding, failing, slow), pause / resume / run-now, and the stop. The tests wait for
//! events, never for elapsed time (each wait is bounded only so a bug cannot hang CI).

use std::time::Duration;

use offload_pool::{ChildPool, PoolConfig, WorkerKind};
use offload_schedule::{
    FailureBackoff, Overlap, Policy, ScheduleEvent, ScheduleSpec, Scheduled, Scheduler, SkipReason,
    Trigger,
};
use serde_json::json;
use tempfile::TempDir;
use tokio::sync::broadcast;

const BOUND: Duration = Duration::from_secs(60);

async fn pool(workers: usize) -> (TempDir, ChildPool) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ok.js"),
        "module.exports = async (p) => ({ n: p.n ?? 0 });\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("fail.js"),
        "module.exports = async () => { throw new Error('always fails'); };\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("slow.js"),
        "module.exports = (p) => new Promise((r) => setTimeout(() => r('slept'), p.ms));\n",
    )
    .unwrap();
    let config = PoolConfig::new(WorkerKind::Node, dir.path()).size(workers, workers);
    let pool = ChildPool::start(config).await.unwrap();
    (dir, pool)
}

fn every(ms: u64) -> Trigger {
    Trigger::every(Duration::from_millis(ms)).unwrap()
}

/// Waits for the first event that `want` accepts; returns it and how many events came before.
async fn until(
    rx: &mut broadcast::Receiver<ScheduleEvent>,
    what: &str,
    mut want: impl FnMut(&ScheduleEvent) -> bool,
) -> ScheduleEvent {
    tokio::time::timeout(BOUND, async {
        loop {
            match rx.recv().await {
                Ok(e) if want(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("events ended before {what}: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} within {BOUND:?}"))
}

fn start(pool: &ChildPool, spec: ScheduleSpec) -> (Scheduled, broadcast::Receiver<ScheduleEvent>) {
    let s = Scheduler::start(pool, spec);
    let rx = s.events();
    (s, rx)
}

#[tokio::test]
async fn an_interval_runs_its_job_and_counts_the_successes() {
    let (_dir, pool) = pool(1).await;
    let spec = ScheduleSpec::new("count", "ok", json!({"n": 7}), every(30));
    let (s, mut rx) = start(&pool, spec);
    for _ in 0..3 {
        let e = until(&mut rx, "a success", |e| {
            matches!(e, ScheduleEvent::Succeeded { .. })
        })
        .await;
        let ScheduleEvent::Succeeded { value, .. } = e else {
            unreachable!()
        };
        assert_eq!(value, json!({"n": 7}));
    }
    let status = s.stop(BOUND).await;
    assert!(status.succeeded >= 3, "{status:?}");
    assert_eq!(
        (status.failed, status.consecutive_failures, status.active),
        (0, 0, 0)
    );
    assert!(status.stopped && status.next_at.is_none(), "{status:?}");
    assert!(status.runs >= status.succeeded);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn failures_are_counted_and_pause_the_schedule_until_it_is_resumed() {
    let (_dir, pool) = pool(1).await;
    let policy = Policy {
        pause_after_failures: Some(3),
        ..Policy::default()
    };
    let spec = ScheduleSpec::new("failing", "fail", json!({}), every(20)).policy(policy);
    let (s, mut rx) = start(&pool, spec);
    let e = until(&mut rx, "the pause", |e| {
        matches!(e, ScheduleEvent::Paused { .. })
    })
    .await;
    let ScheduleEvent::Paused { reason } = e else {
        unreachable!()
    };
    assert_eq!(reason, "3 consecutive failures");
    // Paused: ticks fire nothing (two of them, to be sure no run slipped in).
    for _ in 0..2 {
        until(&mut rx, "a paused tick", |e| {
            matches!(
                e,
                ScheduleEvent::Skipped {
                    reason: SkipReason::Paused,
                    ..
                }
            )
        })
        .await;
    }
    let status = s.status();
    assert_eq!(
        (status.runs, status.failed, status.consecutive_failures),
        (3, 3, 3)
    );
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap()
            .contains("always fails"),
        "{status:?}"
    );
    assert_eq!(status.paused.as_deref(), Some("3 consecutive failures"));
    s.resume();
    until(&mut rx, "the resume", |e| {
        matches!(e, ScheduleEvent::Resumed)
    })
    .await;
    until(&mut rx, "a run after the resume", |e| {
        matches!(e, ScheduleEvent::Started { .. })
    })
    .await;
    let status = s.stop(BOUND).await;
    assert!(status.runs > 3, "{status:?}");
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn skip_fires_nothing_while_a_run_is_unfinished() {
    let (_dir, pool) = pool(2).await;
    let spec = ScheduleSpec::new("slow", "slow", json!({"ms": 400}), every(25));
    let (s, mut rx) = start(&pool, spec);
    until(&mut rx, "a skipped tick", |e| {
        matches!(
            e,
            ScheduleEvent::Skipped {
                reason: SkipReason::Overlap,
                ..
            }
        )
    })
    .await;
    // Two workers, yet never two runs at once.
    for _ in 0..5 {
        until(&mut rx, "another event", |_| true).await;
        assert!(s.status().active <= 1, "{:?}", s.status());
    }
    until(&mut rx, "the first run's end", |e| {
        matches!(e, ScheduleEvent::Succeeded { .. })
    })
    .await;
    s.stop(BOUND).await;
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn queue_lets_runs_pile_up_behind_each_other() {
    let (_dir, pool) = pool(1).await;
    let policy = Policy {
        overlap: Overlap::Queue,
        ..Policy::default()
    };
    let spec = ScheduleSpec::new("q", "slow", json!({"ms": 300}), every(25)).policy(policy);
    let (s, mut rx) = start(&pool, spec);
    let mut starts = 0;
    until(&mut rx, "a third start", |e| {
        if matches!(e, ScheduleEvent::Started { .. }) {
            starts += 1;
        }
        starts >= 3
    })
    .await;
    assert!(s.status().active >= 2, "{:?}", s.status());
    let status = s.stop(Duration::ZERO).await;
    assert_eq!(
        status.failed, 0,
        "runs cancelled by the stop are not failures: {status:?}"
    );
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn replace_cancels_the_unfinished_run_and_starts_the_next() {
    let (_dir, pool) = pool(2).await;
    let policy = Policy {
        overlap: Overlap::Replace,
        ..Policy::default()
    };
    let spec = ScheduleSpec::new("r", "slow", json!({"ms": 60_000}), every(100)).policy(policy);
    let (s, mut rx) = start(&pool, spec);
    let first = until(&mut rx, "the first start", |e| {
        matches!(e, ScheduleEvent::Started { .. })
    })
    .await;
    let ScheduleEvent::Started { job: first, .. } = first else {
        unreachable!()
    };
    // Later runs may be cancelled first (while queued behind it): the first's cancel comes
    // once its worker stopped it.
    until(
        &mut rx,
        "the first run's cancel",
        |e| matches!(e, ScheduleEvent::Cancelled { job: Some(j) } if *j == first),
    )
    .await;
    until(
        &mut rx,
        "the next start",
        |e| matches!(e, ScheduleEvent::Started { job, .. } if *job != first),
    )
    .await;
    let status = s.stop(Duration::ZERO).await;
    assert_eq!((status.failed, status.active), (0, 0), "{status:?}");
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_failure_backoff_skips_the_ticks_in_its_wait() {
    let (_dir, pool) = pool(1).await;
    let policy = Policy {
        failure_backoff: Some(
            FailureBackoff::new(Duration::from_millis(400), Duration::from_secs(1)).unwrap(),
        ),
        ..Policy::default()
    };
    let spec = ScheduleSpec::new("b", "fail", json!({}), every(20)).policy(policy);
    let (s, mut rx) = start(&pool, spec);
    until(&mut rx, "a failure", |e| {
        matches!(e, ScheduleEvent::Failed { .. })
    })
    .await;
    until(&mut rx, "a tick skipped for the backoff", |e| {
        matches!(
            e,
            ScheduleEvent::Skipped {
                reason: SkipReason::Backoff,
                ..
            }
        )
    })
    .await;
    s.stop(BOUND).await;
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn run_now_fires_while_paused_and_a_stop_lets_the_run_finish() {
    let (_dir, pool) = pool(1).await;
    // An expression that fires once a year: only run_now starts anything.
    let spec = ScheduleSpec::new(
        "manual",
        "slow",
        json!({"ms": 200}),
        Trigger::cron("0 0 1 1 *").unwrap(),
    );
    let (s, mut rx) = start(&pool, spec);
    assert!(s.status().next_at.is_some());
    s.pause();
    until(&mut rx, "the pause", |e| {
        matches!(e, ScheduleEvent::Paused { .. })
    })
    .await;
    s.run_now();
    until(&mut rx, "the start", |e| {
        matches!(e, ScheduleEvent::Started { .. })
    })
    .await;
    let status = s.stop(BOUND).await;
    assert_eq!(
        (status.runs, status.succeeded, status.active),
        (1, 1, 0),
        "{status:?}"
    );
    until(&mut rx, "the stop", |e| matches!(e, ScheduleEvent::Stopped)).await;
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn dropping_the_handle_cancels_the_unfinished_run() {
    let (_dir, pool) = pool(1).await;
    let spec = ScheduleSpec::new("dropped", "slow", json!({"ms": 60_000}), every(50_000))
        .immediately(true);
    let (s, mut rx) = start(&pool, spec);
    until(&mut rx, "the start", |e| {
        matches!(e, ScheduleEvent::Started { .. })
    })
    .await;
    drop(s);
    until(&mut rx, "the cancel", |e| {
        matches!(e, ScheduleEvent::Cancelled { .. })
    })
    .await;
    until(&mut rx, "the stop", |e| matches!(e, ScheduleEvent::Stopped)).await;
    pool.shutdown(Duration::from_secs(5)).await;
}
