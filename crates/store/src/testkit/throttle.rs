//! Cases of the conformance suite about rate and concurrency limits: `set_limits`, `limits`,
//! and how `claim` honours them.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use serde_json::json;

use super::{completion, demand, job, succeeded, Harness, LEASE, NODE, WINDOW};
use crate::throttle::{HeldBy, Rate, Throttle, MAX_LIMITS, MAX_PERIOD_MS};
use crate::{JobState, Queue, StoreError};

const HOUR_MS: u64 = 3_600_000;

/// A limit of `queue`: `rate` as (limit, period_ms), `max_running`.
pub fn throttle(queue: Queue, rate: Option<(u64, u64)>, max_running: Option<u64>) -> Throttle {
    Throttle {
        queue,
        rate: rate.map(|(limit, period_ms)| Rate { limit, period_ms }),
        max_running,
    }
}

/// A bucket of N per period gives exactly N claims, then none (the period is an hour: no token
/// comes back during the case); the jobs held back stay `queued` and `limits` says why. The
/// bucket survives a reopen and an unchanged `set_limits`; a changed rate starts full; without
/// the limit the rest is claimed.
pub async fn a_rate_limit_gives_n_starts_per_period_then_none<
    H: Harness,
    Fut: Future<Output = H>,
>(
    fresh: impl FnOnce() -> Fut,
) {
    let mut harness = fresh().await;
    let store = harness.store();
    let limit = throttle(Queue::pool("node"), Some((3, HOUR_MS)), None);
    store.set_limits(vec![limit.clone()]).await.unwrap();
    let ids: Vec<_> = store
        .submit((0..8).map(|_| job("a", "node")).collect(), WINDOW)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    let c = store.claim(NODE, &demand("node", 10), LEASE).await.unwrap();
    assert_eq!(c.len(), 3, "a full bucket of 3");
    assert_eq!(
        c.iter().map(|c| c.id).collect::<Vec<_>>(),
        ids[..3],
        "in claim order"
    );
    assert!(store
        .claim(NODE, &demand("node", 10), LEASE)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.get(ids[3]).await.unwrap().state, JobState::Queued);
    let states = store.limits().await.unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].throttle, limit);
    assert_eq!(states[0].tokens, Some(0));
    assert_eq!(states[0].running, 3);
    assert_eq!(states[0].queued, 5);
    assert_eq!(states[0].held, Some(HeldBy::RateLimit));
    assert_eq!(states[0].held_jobs(), 5);

    // Ending jobs gives no token back; neither do a reopen nor the same limits again.
    let done = c
        .iter()
        .map(|c| completion(c.id, 1, succeeded(json!(1))))
        .collect();
    store.complete(done).await.unwrap();
    drop(store);
    let store = harness.reopen().await;
    store.set_limits(vec![limit]).await.unwrap();
    assert!(store
        .claim(NODE, &demand("node", 10), LEASE)
        .await
        .unwrap()
        .is_empty());

    // A changed rate starts full.
    store
        .set_limits(vec![throttle(
            Queue::pool("node"),
            Some((2, HOUR_MS)),
            None,
        )])
        .await
        .unwrap();
    assert_eq!(
        store
            .claim(NODE, &demand("node", 10), LEASE)
            .await
            .unwrap()
            .len(),
        2
    );
    store.set_limits(Vec::new()).await.unwrap();
    assert!(store.limits().await.unwrap().is_empty());
    assert_eq!(
        store
            .claim(NODE, &demand("node", 10), LEASE)
            .await
            .unwrap()
            .len(),
        3
    );
    harness.check_counts().await;
}

/// A job name limited to K running: K of its jobs run at once, the other jobs of the pool are
/// claimed past the held ones, and one more starts when one ends.
pub async fn a_concurrency_limit_is_never_exceeded<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    store
        .set_limits(vec![throttle(Queue::job("slow.js"), None, Some(2))])
        .await
        .unwrap();
    let mut slow = job("slow.js", "node");
    slow.priority = 5;
    let mut batch: Vec<_> = (0..4).map(|_| slow.clone()).collect();
    batch.extend((0..2).map(|_| job("fast.js", "node")));
    store.submit(batch, WINDOW).await.unwrap();
    let c = store.claim(NODE, &demand("node", 10), LEASE).await.unwrap();
    let names: Vec<_> = c.iter().map(|c| c.job.as_str()).collect();
    assert_eq!(names, ["slow.js", "slow.js", "fast.js", "fast.js"]);
    assert!(store
        .claim(NODE, &demand("node", 10), LEASE)
        .await
        .unwrap()
        .is_empty());
    let states = store.limits().await.unwrap();
    assert_eq!(states[0].running, 2);
    assert_eq!(states[0].queued, 2);
    assert_eq!(states[0].tokens, None);
    assert_eq!(states[0].held, Some(HeldBy::ConcurrencyLimit));

    store
        .complete(vec![completion(c[0].id, 1, succeeded(json!(1)))])
        .await
        .unwrap();
    let next = store.claim(NODE, &demand("node", 10), LEASE).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].job, "slow.js");
    assert!(store
        .claim(NODE, &demand("node", 10), LEASE)
        .await
        .unwrap()
        .is_empty());
    harness.check_counts().await;
}

/// A pool's concurrency and a job name's rate together: the tighter one wins.
pub async fn pool_and_job_limits_combine<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    store
        .set_limits(vec![
            throttle(Queue::pool("node"), None, Some(3)),
            throttle(Queue::job("a"), Some((1, HOUR_MS)), None),
        ])
        .await
        .unwrap();
    let mut batch: Vec<_> = (0..3).map(|_| job("a", "node")).collect();
    batch.extend((0..3).map(|_| job("b", "node")));
    batch.push(job("a", "python"));
    store.submit(batch, WINDOW).await.unwrap();
    let both = [demand("node", 10), demand("python", 10)].concat();
    let c = store.claim(NODE, &both, LEASE).await.unwrap();
    let names: Vec<_> = c
        .iter()
        .map(|c| (c.job.as_str(), c.pool.as_str()))
        .collect();
    assert_eq!(names, [("a", "node"), ("b", "node"), ("b", "node")]);
    let states = store.limits().await.unwrap();
    assert_eq!(states[0].throttle.queue, Queue::pool("node"));
    assert_eq!(states[0].held, Some(HeldBy::ConcurrencyLimit));
    assert_eq!(states[1].throttle.queue, Queue::job("a"));
    assert_eq!(states[1].held, Some(HeldBy::RateLimit));
    assert_eq!(
        states[1].queued, 3,
        "the job name's queued jobs in every pool"
    );
    harness.check_counts().await;
}

/// Zero, negative-as-absent, absurd numbers, a name given twice and too many limits are refused
/// naming the field; nothing is stored.
pub async fn bad_limits_are_refused<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let field = |e: StoreError| match e {
        StoreError::Limit(l) => l.field,
        other => panic!("not a limit error: {other}"),
    };
    let cases = [
        (
            vec![throttle(Queue::pool("p"), Some((0, 1000)), None)],
            "rate.limit",
        ),
        (
            vec![throttle(Queue::pool("p"), Some((1, 0)), None)],
            "rate.period_ms",
        ),
        (
            vec![throttle(
                Queue::pool("p"),
                Some((1, MAX_PERIOD_MS + 1)),
                None,
            )],
            "rate.period_ms",
        ),
        (
            vec![throttle(Queue::pool("p"), Some((1_000_001, 1000)), None)],
            "rate.limit",
        ),
        (
            vec![throttle(Queue::job("j"), None, Some(0))],
            "max_running",
        ),
        (vec![throttle(Queue::job("j"), None, None)], "rate"),
        (vec![throttle(Queue::job(""), None, Some(1))], "name"),
        (
            vec![
                throttle(Queue::job("j"), None, Some(1)),
                throttle(Queue::job("j"), None, Some(2)),
            ],
            "name",
        ),
        (
            (0..=MAX_LIMITS)
                .map(|i| throttle(Queue::job(format!("j{i}")), None, Some(1)))
                .collect(),
            "limits",
        ),
    ];
    for (limits, want) in cases {
        let e = store.set_limits(limits).await.unwrap_err();
        assert_eq!(field(e), want);
    }
    assert!(store.limits().await.unwrap().is_empty());
    // A job limit and a pool limit of the same name are two queues.
    store
        .set_limits(vec![
            throttle(Queue::job("x"), None, Some(1)),
            throttle(Queue::pool("x"), None, Some(1)),
        ])
        .await
        .unwrap();
    assert_eq!(store.limits().await.unwrap().len(), 2);
}

/// Many claimers at once take exactly the bucket's tokens and never run more than the
/// concurrency limit allows.
pub async fn concurrent_claimers_respect_limits<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    store
        .set_limits(vec![
            throttle(Queue::pool("node"), Some((25, HOUR_MS)), None),
            throttle(Queue::job("k"), None, Some(3)),
        ])
        .await
        .unwrap();
    let mut batch: Vec<_> = (0..100).map(|_| job("x", "node")).collect();
    batch.extend((0..20).map(|_| job("k", "python")));
    store.submit(batch, WINDOW).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let node = format!("node-{}", t % 4);
            let want = [demand("node", 1 + t % 4), demand("python", 1 + t % 3)].concat();
            let mut mine = Vec::new();
            loop {
                let c = store.claim(&node, &want, LEASE).await.unwrap();
                if c.is_empty() {
                    return mine;
                }
                mine.extend(c);
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().map(|c| c.id).collect();
    assert_eq!(distinct.len(), all.len(), "no job claimed twice");
    assert_eq!(all.iter().filter(|c| c.pool == "node").count(), 25);
    assert_eq!(all.iter().filter(|c| c.job == "k").count(), 3);
    harness.check_counts().await;
}
