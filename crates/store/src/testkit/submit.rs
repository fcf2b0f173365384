//! Cases of the conformance suite about `submit`: what is stored and answered, batches, delays,
//! idempotency keys and their scope, the bounds of every number, concurrent submits.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{demand, job, Harness, LEASE, NODE, WINDOW};
use crate::limits::{MAX_ATTEMPTS, MAX_PRIORITY, MAX_RUN_AT, MAX_TIMEOUT_MS};
use crate::{now_ms, JobId, JobState, ListFilter, StoreError};

/// A submitted job reads back with every field as submitted; an unknown id is `NotFound`.
pub async fn submit_then_get<H: Harness, Fut: Future<Output = H>>(fresh: impl FnOnce() -> Fut) {
    let harness = fresh().await;
    let store = harness.store();
    let before = now_ms();
    let mut j = job("a.js", "node");
    j.priority = 5;
    j.params = json!({ "x": [1, 2, { "y": null }] });
    let s = store.submit(vec![j.clone()], WINDOW).await.unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].state, JobState::Queued);
    assert!(!s[0].duplicate);
    assert_eq!(s[0].id.get_version_num(), 7);

    let r = store.get(s[0].id).await.unwrap();
    assert_eq!(r.id, s[0].id);
    assert_eq!(r.job, "a.js");
    assert_eq!(r.pool, "node");
    assert_eq!(r.params, j.params);
    assert_eq!(r.state, JobState::Queued);
    assert_eq!(r.priority, 5);
    assert!(r.created_at >= before && r.created_at <= now_ms());
    assert_eq!(r.run_at, r.created_at);
    assert_eq!(r.updated_at, r.created_at);
    assert_eq!(r.attempt, 0);
    assert_eq!(r.max_attempts, 3);
    assert_eq!(r.timeout_ms, Some(1_000));
    assert_eq!(r.backoff_ms, 100);
    assert_eq!(r.idempotency_key, None);
    assert_eq!(r.progress, None);
    assert_eq!(r.result, None);
    assert_eq!(r.error, None);
    assert!(!r.cancel_requested);
    assert_eq!(r.node, None);
    assert_eq!(r.lease_until, None);
    assert!(r.attempts.is_empty());

    let unknown = JobId::now_v7();
    assert!(matches!(
        store.get(unknown).await,
        Err(StoreError::NotFound)
    ));
}

/// A batch is answered in order with time-ordered ids, and a bad job fails the whole batch.
pub async fn a_batch_is_answered_in_order_and_is_atomic<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let jobs: Vec<_> = (0..10).map(|i| job(&format!("j{i}.js"), "node")).collect();
    let s = store.submit(jobs, WINDOW).await.unwrap();
    for (i, sub) in s.iter().enumerate() {
        assert_eq!(store.get(sub.id).await.unwrap().job, format!("j{i}.js"));
    }
    // Ids are time-ordered, in submit order.
    assert!(s.windows(2).all(|w| w[0].id < w[1].id));

    assert!(store.submit(vec![], WINDOW).await.unwrap().is_empty());

    let mut bad = job("bad.js", "node");
    bad.max_attempts = 0;
    let err = store
        .submit(vec![job("ok.js", "node"), bad], WINDOW)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Limit(ref e) if e.field == "max_attempts"),
        "{err}"
    );
    let page = store
        .list(ListFilter {
            job: Some("ok.js".into()),
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert!(page.jobs.is_empty(), "nothing of a failed batch is stored");
}

/// A job with a future `run_at` stays scheduled until due, then is claimable.
pub async fn delayed_jobs_are_scheduled_until_due<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let mut later = job("later.js", "node");
    later.run_at = Some(now_ms() + 300);
    let mut past = job("past.js", "node");
    past.run_at = Some(now_ms() - 1_000);
    let s = store.submit(vec![later, past], WINDOW).await.unwrap();
    assert_eq!(s[0].state, JobState::Scheduled);
    assert_eq!(s[1].state, JobState::Queued);

    let c = store.claim(NODE, &demand("node", 10), LEASE).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].id, s[1].id);
    assert_eq!(store.get(s[0].id).await.unwrap().state, JobState::Scheduled);

    tokio::time::sleep(Duration::from_millis(350)).await;
    let c = store.claim(NODE, &demand("node", 10), LEASE).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].id, s[0].id);
    let r = store.get(s[0].id).await.unwrap();
    assert_eq!(c[0].run_at, r.run_at, "run_at stays the due time");
    harness.check_counts().await;
}

/// An idempotency key answers duplicates within the window only.
pub async fn idempotency_window<H: Harness, Fut: Future<Output = H>>(fresh: impl FnOnce() -> Fut) {
    let harness = fresh().await;
    let store = harness.store();
    let keyed = |k: &str| {
        let mut j = job("pay.js", "node");
        j.idempotency_key = Some(k.into());
        j
    };
    let first = store.submit(vec![keyed("k1")], WINDOW).await.unwrap()[0].clone();
    assert!(!first.duplicate);
    let again = store.submit(vec![keyed("k1")], WINDOW).await.unwrap()[0].clone();
    assert!(again.duplicate);
    assert_eq!(again.id, first.id);
    assert_eq!(again.state, JobState::Queued);

    // The duplicate reports the first job's state now.
    store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    let again = store.submit(vec![keyed("k1")], WINDOW).await.unwrap()[0].clone();
    assert_eq!((again.id, again.state), (first.id, JobState::Running));
    assert_eq!(
        store
            .get(first.id)
            .await
            .unwrap()
            .idempotency_key
            .as_deref(),
        Some("k1")
    );

    // Within one batch.
    let s = store
        .submit(vec![keyed("k2"), keyed("k2"), keyed("k3")], WINDOW)
        .await
        .unwrap();
    assert!(!s[0].duplicate && s[1].duplicate && !s[2].duplicate);
    assert_eq!(s[0].id, s[1].id);
    assert_ne!(s[0].id, s[2].id);

    // Past the window: a new job, which the key now names.
    let short = Duration::from_millis(50);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let fresh = store.submit(vec![keyed("k1")], short).await.unwrap()[0].clone();
    assert!(!fresh.duplicate);
    assert_ne!(fresh.id, first.id);
    let again = store.submit(vec![keyed("k1")], short).await.unwrap()[0].clone();
    assert_eq!((again.id, again.duplicate), (fresh.id, true));

    // A zero window never deduplicates.
    let a = store
        .submit(vec![keyed("k4"), keyed("k4")], Duration::ZERO)
        .await
        .unwrap();
    assert_ne!(a[0].id, a[1].id);
    harness.check_counts().await;
}

/// An idempotency key answers only the same job with the same params: another name or other
/// params within the window is [`StoreError::IdempotencyConflict`] naming the key (and not the
/// other job), and fails the whole batch. Params compare as JSON values (key order does not
/// matter).
pub async fn idempotency_keys_are_scoped_to_job_and_params<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let keyed = |name: &str, params: serde_json::Value| {
        let mut j = job(name, "node");
        j.idempotency_key = Some("order-42".into());
        j.params = params;
        j
    };
    let first = store
        .submit(
            vec![keyed("pay.js", json!({"amount": 10, "to": "alice"}))],
            WINDOW,
        )
        .await
        .unwrap()[0]
        .clone();
    // The same job, the same params (another key order): the first job.
    let again = store
        .submit(
            vec![keyed("pay.js", json!({"to": "alice", "amount": 10}))],
            WINDOW,
        )
        .await
        .unwrap()[0]
        .clone();
    assert_eq!((again.id, again.duplicate), (first.id, true));

    // Other params: a conflict naming the key only.
    for other in [
        keyed("pay.js", json!({"amount": 11, "to": "alice"})),
        keyed("pay.js", json!(null)),
    ] {
        let err = store.submit(vec![other], WINDOW).await.unwrap_err();
        match &err {
            StoreError::IdempotencyConflict { key } => assert_eq!(key, "order-42"),
            e => panic!("expected an idempotency conflict, got {e:?}"),
        }
        let text = err.to_string();
        assert!(text.contains("order-42"), "{text}");
        assert!(!text.contains(&first.id.to_string()), "{text}");
        assert!(!text.contains("alice"), "{text}");
    }

    // In a batch: the whole batch fails, nothing of it is stored.
    let err = store
        .submit(
            vec![
                job("innocent.js", "node"),
                keyed("pay.js", json!({"amount": 12})),
            ],
            WINDOW,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::IdempotencyConflict { .. }),
        "{err}"
    );
    let page = store.list(ListFilter::default()).await.unwrap();
    assert_eq!(page.jobs.len(), 1, "only the first job is stored");
    assert_eq!(page.jobs[0].id, first.id);
    assert_eq!(page.jobs[0].state, JobState::Queued);

    // Keys are scoped by job name: the same key with another name is another job, and each
    // name's key finds its own job (also within one batch).
    let refund = store
        .submit(
            vec![
                keyed("refund.js", json!({"amount": 10, "to": "alice"})),
                keyed("refund.js", json!({"to": "alice", "amount": 10})),
            ],
            WINDOW,
        )
        .await
        .unwrap();
    assert!(!refund[0].duplicate);
    assert_ne!(refund[0].id, first.id);
    assert_eq!((refund[1].id, refund[1].duplicate), (refund[0].id, true));
    let again = store
        .submit(
            vec![keyed("pay.js", json!({"to": "alice", "amount": 10}))],
            WINDOW,
        )
        .await
        .unwrap()[0]
        .clone();
    assert_eq!((again.id, again.duplicate), (first.id, true));

    // Past the window, the key is free for anything.
    let other = store
        .submit(vec![keyed("pay.js", json!({}))], std::time::Duration::ZERO)
        .await
        .unwrap()[0]
        .clone();
    assert!(!other.duplicate);
    assert_ne!(other.id, first.id);
    harness.check_counts().await;
}

/// Numbers out of the ranges of [`crate::limits`] are refused with [`StoreError::Limit`]
/// naming the field; the bounds themselves are accepted.
pub async fn numbers_out_of_range_are_refused<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let mut bad = Vec::new();
    let mut j = job("t.js", "node");
    j.timeout_ms = Some(MAX_TIMEOUT_MS + 1);
    bad.push(("timeout_ms", j));
    let mut j = job("t.js", "node");
    j.timeout_ms = Some(u64::MAX);
    bad.push(("timeout_ms", j));
    let mut j = job("t.js", "node");
    j.run_at = Some(i64::MIN);
    bad.push(("run_at", j));
    let mut j = job("t.js", "node");
    j.run_at = Some(i64::MAX);
    bad.push(("run_at", j));
    let mut j = job("t.js", "node");
    j.max_attempts = MAX_ATTEMPTS + 1;
    bad.push(("max_attempts", j));
    let mut j = job("t.js", "node");
    j.backoff_ms = u64::MAX;
    bad.push(("backoff_ms", j));
    let mut j = job("t.js", "node");
    j.priority = i32::MAX;
    bad.push(("priority", j));
    for (field, j) in bad {
        let err = store.submit(vec![j], WINDOW).await.unwrap_err();
        match &err {
            StoreError::Limit(e) => assert_eq!(e.field, field, "{err}"),
            e => panic!("{field}: expected a limit error, got {e:?}"),
        }
    }
    let mut edge = job("edge.js", "node");
    edge.timeout_ms = Some(MAX_TIMEOUT_MS);
    edge.run_at = Some(MAX_RUN_AT);
    edge.max_attempts = MAX_ATTEMPTS;
    edge.priority = MAX_PRIORITY;
    let s = store.submit(vec![edge], WINDOW).await.unwrap();
    let r = store.get(s[0].id).await.unwrap();
    assert_eq!(r.state, JobState::Scheduled);
    assert_eq!(r.run_at, MAX_RUN_AT);
    assert_eq!(r.timeout_ms, Some(MAX_TIMEOUT_MS));
    harness.check_counts().await;
}

/// Concurrent single submits are all committed and survive a reopen (run it on a multi-thread runtime).
pub async fn concurrent_single_submits_are_all_committed<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let mut harness = fresh().await;
    let store = harness.store();
    let mut tasks = Vec::new();
    for t in 0..64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..20 {
                let s = store
                    .submit(vec![job(&format!("t{t}-{i}"), "node")], WINDOW)
                    .await
                    .unwrap();
                ids.push(s[0].id);
            }
            // A failing call in the same group commits does not hurt the others.
            assert!(store.retry(ids[0]).await.is_err());
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    drop(store);
    let store = harness.reopen().await;
    for id in &ids {
        store.get(*id).await.unwrap();
    }
    let total: u64 = store.counts().await.unwrap().values().sum();
    assert_eq!(total, 1_280);
}
