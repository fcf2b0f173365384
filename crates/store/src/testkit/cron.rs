//! Cases of the conformance suite about cron: a tick fires once and its last tick survives the
//! purge of its jobs; stored schedules; per-schedule counters and pause.

use std::future::Future;
use std::sync::Arc;

use serde_json::json;

use super::{completion, demand, error, job, succeeded, Harness, LEASE, NODE, WINDOW};
use crate::{now_ms, CronSchedule, CronState, CronTick, StoreError, Transition};

/// A cron tick submits its job once, however often it is offered.
pub async fn a_cron_tick_fires_once<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let tick = |t| {
        let mut j = job("nightly.js", "node");
        j.cron = Some(CronTick {
            schedule: "nightly".into(),
            tick: t,
        });
        j
    };
    assert_eq!(store.last_tick("nightly").await.unwrap(), None);
    let first = store.submit(vec![tick(1_000)], WINDOW).await.unwrap()[0].clone();
    assert!(!first.duplicate);
    let dup = store.submit(vec![tick(1_000)], WINDOW).await.unwrap()[0].clone();
    assert_eq!(
        (dup.id, dup.duplicate, dup.state),
        (first.id, true, first.state)
    );
    assert_eq!(store.last_tick("nightly").await.unwrap(), Some(1_000));

    let s = store
        .submit(vec![tick(2_000), tick(2_000)], WINDOW)
        .await
        .unwrap();
    assert!(!s[0].duplicate && s[1].duplicate);
    assert_eq!(s[0].id, s[1].id);
    assert_eq!(store.last_tick("nightly").await.unwrap(), Some(2_000));

    // An older tick does not move the last tick back; another schedule is separate.
    store.submit(vec![tick(1_500)], WINDOW).await.unwrap();
    assert_eq!(store.last_tick("nightly").await.unwrap(), Some(2_000));
    assert_eq!(store.last_tick("hourly").await.unwrap(), None);

    // The last tick survives the purge of the jobs it created.
    for _ in 0..3 {
        let c = store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
        store
            .complete(vec![completion(c[0].id, 1, succeeded(json!(null)))])
            .await
            .unwrap();
    }
    assert_eq!(store.purge(now_ms() + 1).await.unwrap(), 3);
    assert_eq!(store.last_tick("nightly").await.unwrap(), Some(2_000));
    harness.check_counts().await;
}

/// Cron schedules are put, listed and deleted.
pub async fn schedules_crud<H: Harness, Fut: Future<Output = H>>(fresh: impl FnOnce() -> Fut) {
    let harness = fresh().await;
    let store = harness.store();
    let sched = |name: &str, cron: &str| CronSchedule {
        name: name.into(),
        cron: cron.into(),
        job: "report.py".into(),
        params: json!({ "full": true }),
        missed: "skip".into(),
        created_at: 1_000,
        overlap: "skip".into(),
        pause_after_failures: None,
        timezone: None,
        jitter_ms: None,
        failure_backoff_ms: None,
        failure_backoff_max_ms: None,
    };
    assert!(store.schedules().await.unwrap().is_empty());
    store.put_schedule(sched("b", "0 * * * *")).await.unwrap();
    store.put_schedule(sched("a", "*/5 * * * *")).await.unwrap();
    let mut replaced = sched("b", "30 2 * * *");
    replaced.missed = "run_once".into();
    replaced.overlap = "queue".into();
    replaced.pause_after_failures = Some(3);
    replaced.timezone = Some("Europe/Berlin".into());
    replaced.jitter_ms = Some(1_500);
    replaced.failure_backoff_ms = Some(2_000);
    replaced.failure_backoff_max_ms = Some(8_000);
    store.put_schedule(replaced.clone()).await.unwrap();
    assert_eq!(
        store.schedules().await.unwrap(),
        vec![sched("a", "*/5 * * * *"), replaced]
    );
    store.delete_schedule("a").await.unwrap();
    assert!(matches!(
        store.delete_schedule("a").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.schedules().await.unwrap().len(), 1);
}

/// The store counts a schedule's runs, its consecutive failures and its last success and
/// failure as its jobs are submitted and end; `active` while one is unfinished; pause and
/// resume (which starts the failure count afresh); deleting a stored schedule forgets them.
pub async fn cron_counters_and_pause<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let state = || async {
        let all = store.cron_states().await.unwrap();
        all.into_iter().find(|s| s.schedule == "nightly")
    };
    let run = |t: i64, then: Transition| {
        let store = Arc::clone(&store);
        async move {
            let mut j = job("nightly.js", "node");
            j.max_attempts = 1;
            j.cron = Some(CronTick {
                schedule: "nightly".into(),
                tick: t,
            });
            store.submit(vec![j], WINDOW).await.unwrap();
            let c = store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
            store
                .complete(vec![completion(c[0].id, 1, then)])
                .await
                .unwrap();
        }
    };
    assert_eq!(state().await, None);

    let mut j = job("nightly.js", "node");
    j.cron = Some(CronTick {
        schedule: "nightly".into(),
        tick: 1_000,
    });
    store.submit(vec![j], WINDOW).await.unwrap();
    let s = state().await.unwrap();
    assert_eq!((s.runs, s.active, s.consecutive_failures), (1, true, 0));
    let c = store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    assert!(state().await.unwrap().active, "running is active");
    store
        .complete(vec![completion(c[0].id, 1, succeeded(json!(null)))])
        .await
        .unwrap();
    let s = state().await.unwrap();
    assert!(!s.active);
    let success = s.last_success_at.unwrap();

    for t in [2_000, 3_000] {
        run(
            t,
            Transition::Dead {
                error: error(&format!("boom {t}")),
            },
        )
        .await;
    }
    let s = state().await.unwrap();
    assert_eq!(
        (s.runs, s.consecutive_failures, s.active, s.last_success_at),
        (3, 2, false, Some(success))
    );
    assert!(s.last_failure_at.is_some());
    assert_eq!(s.last_error.unwrap()["message"], json!("boom 3000"));
    assert_eq!(s.paused_at, None);

    assert!(store
        .pause_schedule("nightly", 5_000, "2 consecutive failures")
        .await
        .unwrap());
    // Paused already (another node saw the same failures): kept as it was.
    assert!(!store
        .pause_schedule("nightly", 5_500, "manual")
        .await
        .unwrap());
    let s = state().await.unwrap();
    assert_eq!(
        (s.paused_at, s.paused_reason.as_deref()),
        (Some(5_000), Some("2 consecutive failures"))
    );
    // A schedule with no job yet (one of offload.toml) can be paused too.
    store
        .pause_schedule("hourly", 6_000, "manual")
        .await
        .unwrap();
    let names: Vec<String> = store
        .cron_states()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.schedule)
        .collect();
    assert_eq!(names, ["hourly", "nightly"]);

    store.resume_schedule("nightly").await.unwrap();
    let s = state().await.unwrap();
    assert_eq!(
        (s.paused_at, s.paused_reason, s.consecutive_failures, s.runs),
        (None, None, 0, 3)
    );
    run(4_000, succeeded(json!(1))).await;
    assert_eq!(state().await.unwrap().consecutive_failures, 0);

    // Deleting a stored schedule forgets its counters.
    let sched = CronSchedule {
        name: "nightly".into(),
        cron: "0 3 * * *".into(),
        job: "nightly.js".into(),
        params: json!(null),
        missed: "skip".into(),
        created_at: 1_000,
        overlap: "skip".into(),
        pause_after_failures: Some(2),
        timezone: None,
        jitter_ms: None,
        failure_backoff_ms: None,
        failure_backoff_max_ms: None,
    };
    store.put_schedule(sched).await.unwrap();
    store.delete_schedule("nightly").await.unwrap();
    assert_eq!(state().await, None::<CronState>);
    harness.check_counts().await;
}
