//! Cases of the conformance suite about `complete` (every transition, stale completions) and
//! `progress`.

use std::future::Future;
use std::time::Duration;

use serde_json::json;

use super::{completion, demand, error, job, succeeded, Harness, LEASE, NODE, WINDOW};
use crate::{now_ms, JobId, JobState, Transition};

/// Completions apply their transitions: succeeded, retry, dead, cancelled.
pub async fn completions_apply_their_transitions<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let s = store
        .submit(
            (0..4).map(|i| job(&format!("j{i}"), "node")).collect(),
            WINDOW,
        )
        .await
        .unwrap();
    let ids: Vec<_> = s.iter().map(|s| s.id).collect();
    store.claim(NODE, &demand("node", 4), LEASE).await.unwrap();
    let retry_at = now_ms() + 200;
    let mut ok = completion(ids[0], 1, succeeded(json!({ "answer": 42 })));
    ok.started_at = 1_000;
    ok.ended_at = 2_000;
    store
        .complete(vec![
            ok,
            completion(
                ids[1],
                1,
                Transition::Retry {
                    error: error("boom"),
                    run_at: retry_at,
                },
            ),
            completion(
                ids[2],
                1,
                Transition::Dead {
                    error: error("fatal"),
                },
            ),
            completion(ids[3], 1, Transition::Cancelled),
        ])
        .await
        .unwrap();

    let r = store.get(ids[0]).await.unwrap();
    assert_eq!(r.state, JobState::Succeeded);
    assert_eq!(r.result, Some(json!({ "answer": 42 })));
    assert_eq!((r.node, r.lease_until, r.error), (None, None, None));
    let a = &r.attempts[0];
    assert_eq!(
        (
            a.started_at,
            a.ended_at,
            a.outcome.as_deref(),
            a.pid,
            &a.error
        ),
        (1_000, Some(2_000), Some("succeeded"), Some(4242), &None)
    );

    let r = store.get(ids[1]).await.unwrap();
    assert_eq!(r.state, JobState::Failed);
    assert_eq!(r.run_at, retry_at);
    assert_eq!(r.error, Some(error("boom")));
    assert_eq!(r.attempts[0].error, Some(error("boom")));
    assert_eq!(r.attempts[0].outcome.as_deref(), Some("failed"));

    let r = store.get(ids[2]).await.unwrap();
    assert_eq!(r.state, JobState::Dead);
    assert_eq!(r.error, Some(error("fatal")));

    let r = store.get(ids[3]).await.unwrap();
    assert_eq!(r.state, JobState::Cancelled);
    assert_eq!(r.attempts[0].outcome.as_deref(), Some("cancelled"));

    // The failed job is retried when due, as attempt 2; then it succeeds and forgets the error.
    assert!(store
        .claim(NODE, &demand("node", 4), LEASE)
        .await
        .unwrap()
        .is_empty());
    tokio::time::sleep(Duration::from_millis(250)).await;
    let c = store.claim(NODE, &demand("node", 4), LEASE).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].id, c[0].attempt, c[0].run_at), (ids[1], 2, retry_at));
    store
        .complete(vec![completion(ids[1], 2, succeeded(json!("ok")))])
        .await
        .unwrap();
    let r = store.get(ids[1]).await.unwrap();
    assert_eq!(
        (r.state, r.attempt, r.error),
        (JobState::Succeeded, 2, None)
    );
    assert_eq!(r.attempts.len(), 2);
    assert_eq!(r.attempts[1].attempt, 2);
    harness.check_counts().await;
}

/// Completions of an unknown job or an old attempt change nothing.
pub async fn stale_completions_are_ignored<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let id = store
        .submit(vec![job("a.js", "node")], WINDOW)
        .await
        .unwrap()[0]
        .id;
    store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    let mut other_node = completion(id, 1, succeeded(json!(1)));
    other_node.node = "node-b".into();
    store
        .complete(vec![
            completion(id, 2, succeeded(json!(2))),
            other_node,
            completion(JobId::now_v7(), 1, succeeded(json!(3))),
        ])
        .await
        .unwrap();
    let r = store.get(id).await.unwrap();
    assert_eq!(r.state, JobState::Running);
    assert_eq!(r.attempts[0].ended_at, None);

    store
        .complete(vec![completion(id, 1, succeeded(json!("first")))])
        .await
        .unwrap();
    // A second answer for the same attempt changes nothing.
    store
        .complete(vec![completion(
            id,
            1,
            Transition::Dead {
                error: error("late"),
            },
        )])
        .await
        .unwrap();
    let r = store.get(id).await.unwrap();
    assert_eq!(
        (r.state, r.result),
        (JobState::Succeeded, Some(json!("first")))
    );
    assert_eq!(r.attempts.len(), 1);
}

/// Progress updates keep the last value.
pub async fn progress_last_value_wins<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let s = store
        .submit(vec![job("a", "node"), job("b", "node")], WINDOW)
        .await
        .unwrap();
    let (a, b) = (s[0].id, s[1].id);
    store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    store
        .progress(vec![
            (a, json!(10)),
            (a, json!({ "pct": 50 })),
            (b, json!(99)),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.get(a).await.unwrap().progress,
        Some(json!({ "pct": 50 }))
    );
    assert_eq!(
        store.get(b).await.unwrap().progress,
        None,
        "b is not running"
    );
    store.progress(vec![]).await.unwrap();
}
