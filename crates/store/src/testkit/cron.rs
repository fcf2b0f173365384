//! Cases of the conformance suite about cron: a tick fires once and its last tick survives the
//! purge of its jobs; stored schedules.

use std::future::Future;

use serde_json::json;

use super::{completion, demand, job, succeeded, Harness, LEASE, NODE, WINDOW};
use crate::{now_ms, CronSchedule, CronTick, StoreError};

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
    };
    assert!(store.schedules().await.unwrap().is_empty());
    store.put_schedule(sched("b", "0 * * * *")).await.unwrap();
    store.put_schedule(sched("a", "*/5 * * * *")).await.unwrap();
    let mut replaced = sched("b", "30 2 * * *");
    replaced.missed = "run_once".into();
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
