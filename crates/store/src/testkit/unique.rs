//! Cases of the conformance suite about `unique = "while-active"`: one unfinished job per job
//! name and params (or key), returned to later submits until it ends.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use serde_json::json;

use super::{completion, demand, job, succeeded, Harness, LEASE, NODE, WINDOW};
use crate::{JobState, NewJob, StoreError, Transition};

fn unique(name: &str, params: serde_json::Value) -> NewJob {
    let mut j = job(name, "node");
    j.params = params;
    j.unique = true;
    j
}

/// While a unique job is unfinished, a submit of the same name and params (in any key order)
/// returns it; other params, another name or a job without `unique` make new jobs; once it
/// ends, the next submit makes a new one. With an idempotency key the key decides, whatever
/// the params.
pub async fn unique_while_active_returns_the_unfinished_job<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let first = store
        .submit(vec![unique("r", json!({"a": 1, "b": 2}))], WINDOW)
        .await
        .unwrap()[0]
        .clone();
    assert!(!first.duplicate);
    let again = store
        .submit(
            vec![
                unique("r", json!({"b": 2, "a": 1})),
                unique("r", json!({"a": 2})),
                unique("other", json!({"a": 1, "b": 2})),
                {
                    let mut plain = unique("r", json!({"a": 1, "b": 2}));
                    plain.unique = false;
                    plain
                },
            ],
            WINDOW,
        )
        .await
        .unwrap();
    assert_eq!(again[0].id, first.id);
    assert!(again[0].duplicate);
    assert_eq!(again[0].state, JobState::Queued);
    assert!(again[1..].iter().all(|s| !s.duplicate && s.id != first.id));

    // Running is unfinished too; once it ends, a new job.
    let c = store.claim(NODE, &demand("node", 10), LEASE).await.unwrap();
    assert!(c.iter().any(|c| c.id == first.id));
    let dup = store
        .submit(vec![unique("r", json!({"a": 1, "b": 2}))], WINDOW)
        .await
        .unwrap();
    assert_eq!((dup[0].id, dup[0].state), (first.id, JobState::Running));
    store
        .complete(vec![completion(first.id, 1, succeeded(json!(1)))])
        .await
        .unwrap();
    let next = store
        .submit(vec![unique("r", json!({"a": 1, "b": 2}))], WINDOW)
        .await
        .unwrap();
    assert!(!next[0].duplicate);
    assert_ne!(next[0].id, first.id);

    // A key makes the key the unique one: other params, same job.
    let mut keyed = unique("k", json!({"n": 1}));
    keyed.idempotency_key = Some("order-1".into());
    keyed.key_ttl_ms = Some(1);
    let a = store.submit(vec![keyed.clone()], WINDOW).await.unwrap();
    // Past the key's own 1 ms window (so the idempotency check no longer answers): only the
    // uniqueness of the unfinished job can return it now. A submit in the same millisecond
    // would meet the window and be a conflict for its other params.
    let past = crate::now_ms() + 5;
    while crate::now_ms() < past {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    keyed.params = json!({"n": 2});
    let b = store.submit(vec![keyed], WINDOW).await.unwrap();
    assert_eq!(b[0].id, a[0].id);
    assert!(b[0].duplicate);

    // A retry that would make a second unfinished job of one unique key is a conflict.
    let c = store.claim(NODE, &demand("node", 10), LEASE).await.unwrap();
    let n = c.iter().find(|c| c.id == next[0].id).unwrap();
    store
        .complete(vec![completion(
            n.id,
            n.attempt,
            Transition::Dead {
                error: super::error("no"),
            },
        )])
        .await
        .unwrap();
    let newer = store
        .submit(vec![unique("r", json!({"a": 1, "b": 2}))], WINDOW)
        .await
        .unwrap();
    assert!(!newer[0].duplicate);
    match store.retry(n.id).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("unique"), "{m}"),
        other => panic!("retry of a unique job beside an active one: {other:?}"),
    }
    harness.check_counts().await;
}

/// Many concurrent submits of one unique job make one job.
pub async fn concurrent_unique_submits_make_one_job<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .submit(vec![unique("once", json!({"x": [1, 2]}))], WINDOW)
                .await
                .unwrap()[0]
                .clone()
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.unwrap());
    }
    let ids: HashSet<_> = all.iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), 1, "{all:?}");
    assert_eq!(all.iter().filter(|s| !s.duplicate).count(), 1);
    harness.check_counts().await;
}
