//! Cases of the conformance suite about paused queues: `pause_queue`, `resume_queue`,
//! `paused_queues`, and how `claim` honours them.

use std::future::Future;

use super::{demand, job, Harness, LEASE, NODE, WINDOW};
use crate::queues::{MAX_PAUSED_QUEUES, MAX_QUEUE_NAME};
use crate::{now_ms, Demand, JobState, Queue, QueueKind, StoreError};

/// A paused pool keeps its jobs and gives none to a claim, across a reopen; resumed, it does.
pub async fn a_paused_pool_claims_nothing_until_resumed<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let mut harness = fresh().await;
    let store = harness.store();
    let at = now_ms();
    assert!(store.pause_queue(&Queue::pool("node"), at).await.unwrap());
    // Paused already: unchanged, it keeps its time.
    assert!(!store
        .pause_queue(&Queue::pool("node"), at + 5)
        .await
        .unwrap());
    let ids: Vec<_> = store
        .submit(vec![job("a", "node"), job("b", "python")], WINDOW)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    let both = [
        Demand {
            pool: "node".into(),
            n: 10,
        },
        Demand {
            pool: "python".into(),
            n: 10,
        },
    ];
    let c = store.claim(NODE, &both, LEASE).await.unwrap();
    let names: Vec<_> = c.iter().map(|c| c.job.as_str()).collect();
    assert_eq!(names, ["b"], "the paused pool gave a job");
    assert_eq!(store.get(ids[0]).await.unwrap().state, JobState::Queued);

    drop(store);
    let store = harness.reopen().await;
    let paused = store.paused_queues().await.unwrap();
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0].queue, Queue::pool("node"));
    assert_eq!(paused[0].paused_at, at);
    assert!(store
        .claim(NODE, &demand("node", 10), LEASE)
        .await
        .unwrap()
        .is_empty());

    assert!(store.resume_queue(&Queue::pool("node")).await.unwrap());
    assert!(!store.resume_queue(&Queue::pool("node")).await.unwrap());
    assert!(store.paused_queues().await.unwrap().is_empty());
    let c = store.claim(NODE, &demand("node", 10), LEASE).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].id, ids[0]);
    harness.check_counts().await;
}

/// A paused job name is skipped in every pool; the other jobs behind it are claimed.
pub async fn a_paused_job_name_is_skipped_by_claims<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    assert!(store
        .pause_queue(&Queue::job("slow.js"), now_ms())
        .await
        .unwrap());
    let mut first = job("slow.js", "node");
    first.priority = 10;
    store
        .submit(
            vec![first, job("fast.js", "node"), job("slow.js", "python")],
            WINDOW,
        )
        .await
        .unwrap();
    let c = store.claim(NODE, &demand("node", 10), LEASE).await.unwrap();
    let names: Vec<_> = c.iter().map(|c| c.job.as_str()).collect();
    assert_eq!(names, ["fast.js"]);
    assert!(store
        .claim(NODE, &demand("python", 10), LEASE)
        .await
        .unwrap()
        .is_empty());
    // A pool of the same name is another queue.
    assert!(!store.resume_queue(&Queue::pool("slow.js")).await.unwrap());
    let paused = store.paused_queues().await.unwrap();
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0].queue.kind, QueueKind::Job);

    assert!(store.resume_queue(&Queue::job("slow.js")).await.unwrap());
    let n = store.claim(NODE, &demand("node", 10), LEASE).await.unwrap();
    assert_eq!(n.len(), 1);
    let p = store
        .claim(NODE, &demand("python", 10), LEASE)
        .await
        .unwrap();
    assert_eq!(p.len(), 1);
    harness.check_counts().await;
}

/// Names out of bounds and one pause over [`MAX_PAUSED_QUEUES`] are refused, naming the limit.
pub async fn queue_pauses_are_bounded<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    for name in [String::new(), "x".repeat(MAX_QUEUE_NAME + 1)] {
        let err = store
            .pause_queue(&Queue::job(name), now_ms())
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Limit(ref l) if l.field == "name"),
            "{err}"
        );
    }
    let tasks: Vec<_> = (0..MAX_PAUSED_QUEUES)
        .map(|i| {
            let store = harness.store();
            // Concurrent calls: the engines batch them.
            tokio::spawn(async move { store.pause_queue(&Queue::job(format!("j{i}")), 1).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().unwrap());
    }
    let err = store
        .pause_queue(&Queue::pool("one-more"), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Limit(ref l) if l.field == "paused queues"),
        "{err}"
    );
    // Paused already is not one more.
    assert!(!store.pause_queue(&Queue::job("j7"), 1).await.unwrap());
    assert!(store.resume_queue(&Queue::job("j7")).await.unwrap());
    assert!(store
        .pause_queue(&Queue::pool("one-more"), 1)
        .await
        .unwrap());
    assert_eq!(
        store.paused_queues().await.unwrap().len(),
        MAX_PAUSED_QUEUES
    );
}
