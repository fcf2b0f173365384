//! Cases of the conformance suite about the queue semantics of issue 15: a job's retry
//! [`Backoff`] (stored, claimed, read back) and non-retryable errors (kept as such).

use std::future::Future;

use super::{completion, demand, error, job, Harness, LEASE, NODE, WINDOW};
use crate::{Backoff, Curve, JobState, ListFilter, StoreError, Transition};

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
    assert_eq!((of(chosen), of(plain)), (policy.clone(), Backoff::legacy(100)));

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
