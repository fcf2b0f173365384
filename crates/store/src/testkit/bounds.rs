//! Cases of the conformance suite about scoped idempotency keys and number bounds.

use std::future::Future;

use serde_json::json;

use super::{job, Harness, WINDOW};
use crate::limits::{MAX_ATTEMPTS, MAX_PRIORITY, MAX_RUN_AT, MAX_TIMEOUT_MS};
use crate::{JobState, ListFilter, StoreError};

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

    // Another job name, or other params: a conflict naming the key only.
    for other in [
        keyed("refund.js", json!({"amount": 10, "to": "alice"})),
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
                keyed("refund.js", json!({"amount": 10})),
            ],
            WINDOW,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::IdempotencyConflict { .. }),
        "{err}"
    );
    // Within one batch too: two jobs sharing a new key must agree.
    let mut a = job("a.js", "node");
    a.idempotency_key = Some("fresh".into());
    let mut b = job("b.js", "node");
    b.idempotency_key = Some("fresh".into());
    let err = store.submit(vec![a, b], WINDOW).await.unwrap_err();
    assert!(
        matches!(err, StoreError::IdempotencyConflict { .. }),
        "{err}"
    );
    let page = store.list(ListFilter::default()).await.unwrap();
    assert_eq!(page.jobs.len(), 1, "only the first job is stored");
    assert_eq!(page.jobs[0].id, first.id);
    assert_eq!(page.jobs[0].state, JobState::Queued);

    // Past the window, the key is free for anything.
    let other = store
        .submit(
            vec![keyed("refund.js", json!({}))],
            std::time::Duration::ZERO,
        )
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
