//! Cases of the conformance suite about the queue semantics of issue 15: a job's retry
//! [`Backoff`] (stored, claimed, read back), non-retryable errors (kept as such) and a
//! succeeded job's own retention (`keep_result_ms`, which purge honours), a submit's own
//! idempotency window (`key_ttl_ms`).

use std::future::Future;
use std::time::Duration;

use serde_json::json;

use super::{completion, demand, error, job, succeeded, Harness, LEASE, NODE, WINDOW};
use crate::limits::MAX_KEEP_RESULT_MS;
use crate::{now_ms, Backoff, Curve, JobState, ListFilter, StoreError, Transition};

/// A job's backoff comes back from `get`, `list` and `claim`, also after a reopen; a job that
/// named none reads as [`Backoff::legacy`] of its `backoff_ms`. A dead job's non-retryable
/// error keeps `retry: false`, on the job and on its attempt.
pub async fn backoffs_and_final_errors_round_trip<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let mut harness = fresh().await;
    let store = harness.store();
    let policy = Backoff {
        curve: Curve::List(vec![1000, 5000, 30_000]),
        max_delay_ms: 20_000,
        jitter: true,
    };
    let mut chosen = job("chosen.js", "node");
    chosen.backoff = Some(policy.clone());
    let plain = job("plain.js", "node");
    let s = store.submit(vec![chosen, plain], WINDOW).await.unwrap();
    let (chosen, plain) = (s[0].id, s[1].id);
    assert_eq!(store.get(chosen).await.unwrap().backoff, policy);
    assert_eq!(
        store.get(plain).await.unwrap().backoff,
        Backoff::legacy(100)
    );
    let page = store
        .list(ListFilter {
            limit: 10,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.jobs.iter().map(|j| &j.backoff).collect::<Vec<_>>(),
        [&Backoff::legacy(100), &policy]
    );
    let claimed = store.claim(NODE, &demand("node", 2), LEASE).await.unwrap();
    let of = |id| claimed.iter().find(|c| c.id == id).unwrap().backoff.clone();
    assert_eq!(
        (of(chosen), of(plain)),
        (policy.clone(), Backoff::legacy(100))
    );

    let mut fatal = error("no such user");
    fatal.retry = false;
    store
        .complete(vec![completion(
            chosen,
            1,
            Transition::Dead {
                error: fatal.clone(),
            },
        )])
        .await
        .unwrap();
    drop(store);
    let store = harness.reopen().await;
    let r = store.get(chosen).await.unwrap();
    assert_eq!((r.state, r.attempt), (JobState::Dead, 1));
    assert_eq!(r.error.as_ref(), Some(&fatal));
    assert_eq!(r.attempts[0].error.as_ref(), Some(&fatal));
    assert_eq!(r.backoff, policy);
    harness.check_counts().await;
}

/// A backoff out of bounds refuses the whole batch, naming its field; nothing is stored.
pub async fn bad_backoffs_are_refused<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let bad = [
        (Curve::List(vec![]), 0, "backoff.delays_ms"),
        (Curve::Exponential(u64::MAX), 0, "backoff.delay_ms"),
        (Curve::Fixed(1), u64::MAX, "backoff.max_delay_ms"),
    ];
    for (curve, max_delay_ms, field) in bad {
        let mut j = job("bad.js", "node");
        j.backoff = Some(Backoff {
            curve,
            max_delay_ms,
            jitter: false,
        });
        let err = store
            .submit(vec![job("fine.js", "node"), j], WINDOW)
            .await
            .unwrap_err();
        match &err {
            StoreError::Limit(e) => assert_eq!(e.field, field, "{err}"),
            e => panic!("{field}: expected a limit error, got {e:?}"),
        }
    }
    let page = store
        .list(ListFilter {
            limit: 10,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert!(page.jobs.is_empty(), "{:?}", page.jobs);
    harness.check_counts().await;
}

/// A succeeded job's `keep_result_ms` replaces the retention for it, shorter or longer; dead
/// jobs (and jobs that name none) follow the retention. A value out of bounds is refused.
pub async fn purge_honours_a_succeeded_jobs_own_retention<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let keep = |name: &str, ms: Option<u64>| {
        let mut j = job(name, "node");
        j.keep_result_ms = ms;
        j
    };
    let s = store
        .submit(
            vec![
                keep("short", Some(0)),
                keep("long", Some(MAX_KEEP_RESULT_MS)),
                keep("plain", None),
                keep("dead", Some(0)),
            ],
            WINDOW,
        )
        .await
        .unwrap();
    let id = |i: usize| s[i].id;
    store.claim(NODE, &demand("node", 4), LEASE).await.unwrap();
    store
        .complete(vec![
            completion(id(0), 1, succeeded(json!("a"))),
            completion(id(1), 1, succeeded(json!("b"))),
            completion(id(2), 1, succeeded(json!("c"))),
            completion(id(3), 1, Transition::Dead { error: error("x") }),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.get(id(1)).await.unwrap().keep_result_ms,
        Some(MAX_KEEP_RESULT_MS)
    );
    assert_eq!(store.get(id(2)).await.unwrap().keep_result_ms, None);
    // A retention that keeps everything: only the job whose own 0 ms have passed goes.
    assert_eq!(store.purge(0).await.unwrap(), 1);
    assert!(matches!(store.get(id(0)).await, Err(StoreError::NotFound)));
    // A retention that keeps nothing: all but the job that asked for ten years.
    assert_eq!(store.purge(now_ms() + 86_400_000).await.unwrap(), 2);
    for gone in [id(2), id(3)] {
        assert!(matches!(store.get(gone).await, Err(StoreError::NotFound)));
    }
    let long = store.get(id(1)).await.unwrap();
    assert_eq!(
        (long.state, long.result),
        (JobState::Succeeded, Some(json!("b")))
    );
    let err = store
        .submit(vec![keep("bad", Some(MAX_KEEP_RESULT_MS + 1))], WINDOW)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Limit(e) if e.field == "keep_result_ms"),
        "{err:?}"
    );
    harness.check_counts().await;
}

/// A submit's `key_ttl_ms` is its idempotency window, over the store's, longer or shorter.
pub async fn a_submits_own_key_window_decides_whether_it_is_a_duplicate<
    H: Harness,
    Fut: Future<Output = H>,
>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let keyed = |ttl: Option<u64>| {
        let mut j = job("keyed", "node");
        j.idempotency_key = Some("k".into());
        j.key_ttl_ms = ttl;
        j
    };
    let first = store.submit(vec![keyed(None)], WINDOW).await.unwrap()[0].clone();
    // The store's window is 0 (every key free) but the submit's own hour finds the first job.
    let again = store
        .submit(vec![keyed(Some(3_600_000))], Duration::ZERO)
        .await
        .unwrap()[0]
        .clone();
    assert_eq!((again.id, again.duplicate), (first.id, true));
    // The store's hour would find it; the submit's own 1 ms has passed: a new job.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let fresh_job = store.submit(vec![keyed(Some(1))], WINDOW).await.unwrap()[0].clone();
    assert!(!fresh_job.duplicate);
    assert_ne!(fresh_job.id, first.id);
    // The key now names the new job.
    let third = store.submit(vec![keyed(None)], WINDOW).await.unwrap()[0].clone();
    assert_eq!((third.id, third.duplicate), (fresh_job.id, true));
    let err = store
        .submit(vec![keyed(Some(0))], WINDOW)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Limit(e) if e.field == "key_ttl_ms"),
        "{err:?}"
    );
    harness.check_counts().await;
}
