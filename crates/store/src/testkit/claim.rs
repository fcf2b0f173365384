//! Cases of the conformance suite about the leases: `claim` (order, per-pool demand, what a claim
//! records), `renew`, `recover`, and concurrent claimers.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{completion, demand, job, succeeded, Harness, LEASE, NODE, WINDOW};
use crate::{now_ms, Demand, JobId, JobState};

/// Claims follow priority then age, and take at most the demand of each pool.
pub async fn claim_order_and_per_pool_limits<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let now = now_ms();
    let mk = |name: &str, pool: &str, priority: i32, run_at: i64| {
        let mut j = job(name, pool);
        j.priority = priority;
        j.run_at = Some(run_at);
        j
    };
    store
        .submit(
            vec![
                mk("low-old", "node", 0, now - 5_000),
                mk("high-new", "node", 10, now - 1_000),
                mk("high-old", "node", 10, now - 2_000),
                mk("mid", "node", 5, now - 9_000),
                mk("low-tie-1", "node", 0, now - 3_000),
                mk("low-tie-2", "node", 0, now - 3_000),
                mk("py", "python", 100, now - 9_000),
            ],
            WINDOW,
        )
        .await
        .unwrap();
    let c = store.claim(NODE, &demand("node", 4), LEASE).await.unwrap();
    let names: Vec<_> = c.iter().map(|c| c.job.as_str()).collect();
    assert_eq!(names, ["high-old", "high-new", "mid", "low-old"]);
    let c = store.claim(NODE, &demand("node", 10), LEASE).await.unwrap();
    let names: Vec<_> = c.iter().map(|c| c.job.as_str()).collect();
    // Same priority and run_at: by id, i.e. submit order.
    assert_eq!(names, ["low-tie-1", "low-tie-2"]);
    assert!(store
        .claim(NODE, &demand("node", 10), LEASE)
        .await
        .unwrap()
        .is_empty());

    // Several pools in one call; n = 0 takes nothing.
    store
        .submit(
            vec![mk("n2", "node", 0, now), mk("p2", "python", 0, now)],
            WINDOW,
        )
        .await
        .unwrap();
    let both = [
        Demand {
            pool: "node".into(),
            n: 0,
        },
        Demand {
            pool: "python".into(),
            n: 1,
        },
    ];
    let c = store.claim(NODE, &both, LEASE).await.unwrap();
    let names: Vec<_> = c.iter().map(|c| c.job.as_str()).collect();
    assert_eq!(names, ["py"]);
    let both = [
        Demand {
            pool: "node".into(),
            n: 5,
        },
        Demand {
            pool: "python".into(),
            n: 5,
        },
    ];
    let c = store.claim(NODE, &both, LEASE).await.unwrap();
    let names: Vec<_> = c.iter().map(|c| c.job.as_str()).collect();
    assert_eq!(names, ["n2", "p2"]);
    assert!(store.claim(NODE, &[], LEASE).await.unwrap().is_empty());
    harness.check_counts().await;
}

/// A claim leases the job to the node and records its attempt.
pub async fn claim_leases_the_job_and_records_the_attempt<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let s = store
        .submit(vec![job("a.js", "node")], WINDOW)
        .await
        .unwrap();
    let before = now_ms();
    let c = store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    assert_eq!(c.len(), 1);
    let c = &c[0];
    let r = store.get(s[0].id).await.unwrap();
    assert_eq!(c.id, r.id);
    assert_eq!(c.job, "a.js");
    assert_eq!(c.pool, "node");
    assert_eq!(c.params, json!({ "n": 1 }));
    assert_eq!(c.attempt, 1);
    assert_eq!(c.max_attempts, 3);
    assert_eq!(c.timeout_ms, Some(1_000));
    assert_eq!(c.backoff_ms, 100);
    assert_eq!(c.created_at, r.created_at);
    assert_eq!(c.run_at, r.run_at);

    assert_eq!(r.state, JobState::Running);
    assert_eq!(r.attempt, 1);
    assert_eq!(r.node.as_deref(), Some(NODE));
    let lease_until = r.lease_until.unwrap();
    assert!(lease_until >= before + 30_000 && lease_until <= now_ms() + 30_000);
    assert_eq!(r.attempts.len(), 1);
    let a = &r.attempts[0];
    assert_eq!(a.attempt, 1);
    assert_eq!(a.node.as_deref(), Some(NODE));
    assert!(a.started_at >= before);
    assert_eq!(
        (a.ended_at, &a.outcome, &a.error, a.pid),
        (None, &None, &None, None)
    );
}

/// Renewing extends the leases held and reports the ones lost.
pub async fn renew_extends_leases_and_reports_lost_ones<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let s = store
        .submit(vec![job("a", "node"), job("b", "node")], WINDOW)
        .await
        .unwrap();
    let (a, b) = (s[0].id, s[1].id);
    store
        .claim(NODE, &demand("node", 2), Duration::from_secs(1))
        .await
        .unwrap();
    let old = store.get(a).await.unwrap().lease_until.unwrap();
    let lost = store.renew(NODE, &[a, b], LEASE).await.unwrap();
    assert!(lost.is_empty());
    assert!(store.get(a).await.unwrap().lease_until.unwrap() >= old + 29_000);

    store
        .complete(vec![completion(b, 1, succeeded(json!(null)))])
        .await
        .unwrap();
    let unknown = JobId::now_v7();
    let lost = store.renew(NODE, &[a, b, unknown], LEASE).await.unwrap();
    assert_eq!(lost, vec![b, unknown]);
    let lost = store.renew("node-b", &[a], LEASE).await.unwrap();
    assert_eq!(lost, vec![a], "another node does not hold it");
    assert!(store.renew(NODE, &[], LEASE).await.unwrap().is_empty());
}

/// A job whose lease expired is recovered and claimable again, its attempt counted.
pub async fn an_expired_lease_is_recovered_and_claimable_again<
    H: Harness,
    Fut: Future<Output = H>,
>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let id = store
        .submit(vec![job("a.js", "node")], WINDOW)
        .await
        .unwrap()[0]
        .id;
    store
        .claim(NODE, &demand("node", 1), Duration::from_millis(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.recover(None).await.unwrap(), 1);
    assert_eq!(store.recover(None).await.unwrap(), 0);
    let r = store.get(id).await.unwrap();
    assert_eq!(r.state, JobState::Queued);
    assert_eq!((r.attempt, r.node, r.lease_until), (1, None, None));
    assert_eq!(r.attempts[0].outcome.as_deref(), Some("lease_expired"));
    assert!(r.attempts[0].ended_at.is_some());

    let c = store
        .claim("node-b", &demand("node", 1), LEASE)
        .await
        .unwrap();
    assert_eq!(
        (c[0].id, c[0].attempt),
        (id, 2),
        "the lost attempt is counted"
    );
    // The first node's late answer is ignored.
    store
        .complete(vec![completion(id, 1, succeeded(json!("late")))])
        .await
        .unwrap();
    let r = store.get(id).await.unwrap();
    assert_eq!(
        (r.state, r.node.as_deref()),
        (JobState::Running, Some("node-b"))
    );
    // The lost node learns it on renew.
    assert_eq!(store.renew(NODE, &[id], LEASE).await.unwrap(), vec![id]);

    // A restarted node takes back all its running jobs, leases or not.
    assert_eq!(store.recover(Some(NODE)).await.unwrap(), 0);
    assert_eq!(store.recover(Some("node-b")).await.unwrap(), 1);
    let c = store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    assert_eq!(c[0].attempt, 3);
    let r = store.get(id).await.unwrap();
    let outcomes: Vec<_> = r.attempts.iter().map(|a| a.outcome.as_deref()).collect();
    assert_eq!(
        outcomes,
        [Some("lease_expired"), Some("lease_expired"), None]
    );
    assert_eq!(r.attempts[1].node.as_deref(), Some("node-b"));
    harness.check_counts().await;
}

/// Concurrent claimers never share a job (run it on a multi-thread runtime).
pub async fn concurrent_claimers_never_share_a_job<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    for _ in 0..20 {
        store
            .submit((0..100).map(|_| job("x", "node")).collect(), WINDOW)
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for t in 0..64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let node = format!("node-{}", t % 4);
            let mut mine = Vec::new();
            loop {
                let c = store
                    .claim(&node, &demand("node", 1 + t % 7), LEASE)
                    .await
                    .unwrap();
                if c.is_empty() {
                    return mine;
                }
                mine.extend(c.into_iter().map(|c| c.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 2_000, "every job claimed once");
    assert_eq!(distinct.len(), 2_000, "no job claimed twice");
    harness.check_counts().await;
}
