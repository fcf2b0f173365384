//! Cases of the conformance suite about dependencies (`after`): a job waits until the jobs it
//! names are over, runs when they all succeeded, is cancelled (with its own dependents) when
//! one ends otherwise, unless its policy is `always`.

use std::collections::HashSet;
use std::future::Future;

use serde_json::json;

use super::{completion, demand, error, job, succeeded, Harness, LEASE, NODE, WINDOW};
use crate::after::MAX_AFTER;
use crate::{After, AfterPolicy, JobId, JobState, NewJob, Store, StoreError, Transition};

fn after(name: &str, deps: &[After]) -> NewJob {
    let mut j = job(name, "node");
    j.after = deps.to_vec();
    j
}

/// The ids a claim of everything claimable gives.
async fn claim_all(store: &dyn Store) -> HashSet<JobId> {
    store
        .claim(NODE, &demand("node", 100), LEASE)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

async fn state(store: &dyn Store, id: JobId) -> JobState {
    store.get(id).await.unwrap().state
}

/// A job after two others is `waiting` (not claimable, its view names them and how many are
/// left) until both succeeded, then `queued`.
pub async fn after_waits_until_every_dependency_succeeded<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let s = store
        .submit(vec![job("a", "node"), job("b", "node")], WINDOW)
        .await
        .unwrap();
    let (a, b) = (s[0].id, s[1].id);
    let c = store
        .submit(
            vec![after("c", &[After::Job(a), After::Job(b), After::Job(a)])],
            WINDOW,
        )
        .await
        .unwrap()[0]
        .clone();
    assert_eq!(c.state, JobState::Waiting);
    let view = store.get(c.id).await.unwrap();
    assert_eq!(view.after, vec![a, b]);
    assert_eq!(view.waiting_on, 2);
    assert_eq!(view.after_policy, AfterPolicy::Succeeded);
    harness.check_counts().await;

    assert_eq!(claim_all(&*store).await, HashSet::from([a, b]));
    store
        .complete(vec![completion(a, 1, succeeded(json!(1)))])
        .await
        .unwrap();
    let view = store.get(c.id).await.unwrap();
    assert_eq!((view.state, view.waiting_on), (JobState::Waiting, 1));
    assert!(claim_all(&*store).await.is_empty());
    store
        .complete(vec![completion(b, 1, succeeded(json!(2)))])
        .await
        .unwrap();
    let view = store.get(c.id).await.unwrap();
    assert_eq!((view.state, view.waiting_on), (JobState::Queued, 0));
    assert_eq!(view.after, vec![a, b]);
    harness.check_counts().await;
    assert_eq!(claim_all(&*store).await, HashSet::from([c.id]));

    // After a job that succeeded already: it starts at once.
    let d = store
        .submit(vec![after("d", &[After::Job(a)])], WINDOW)
        .await
        .unwrap();
    assert_eq!(d[0].state, JobState::Queued);
    harness.check_counts().await;
}

/// A batch `a → b → c` (items naming earlier items) plus `d` after `a` with `always`: `a`
/// dead cancels `b`, which cancels `c` (each naming the job it waited for); `d` runs anyway.
pub async fn a_failed_dependency_cancels_its_chain_unless_always<
    H: Harness,
    Fut: Future<Output = H>,
>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let mut d = after("d", &[After::Item(0)]);
    d.after_policy = AfterPolicy::Always;
    let s = store
        .submit(
            vec![
                job("a", "node"),
                after("b", &[After::Item(0)]),
                after("c", &[After::Item(1)]),
                d,
            ],
            WINDOW,
        )
        .await
        .unwrap();
    let ids: Vec<JobId> = s.iter().map(|s| s.id).collect();
    let states: Vec<JobState> = s.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            JobState::Queued,
            JobState::Waiting,
            JobState::Waiting,
            JobState::Waiting
        ]
    );
    assert_eq!(store.get(ids[2]).await.unwrap().after, vec![ids[1]]);
    assert_eq!(claim_all(&*store).await, HashSet::from([ids[0]]));
    store
        .complete(vec![completion(
            ids[0],
            1,
            Transition::Dead {
                error: error("boom"),
            },
        )])
        .await
        .unwrap();
    for (k, dep) in [(1, ids[0]), (2, ids[1])] {
        let v = store.get(ids[k]).await.unwrap();
        assert_eq!(v.state, JobState::Cancelled, "item {k}");
        let e = v.error.expect("a cancelled dependent says why");
        assert_eq!(e.name, "DependencyFailed");
        assert!(e.message.contains(&dep.to_string()), "{}", e.message);
    }
    assert_eq!(state(&*store, ids[3]).await, JobState::Queued);
    harness.check_counts().await;
    assert_eq!(claim_all(&*store).await, HashSet::from([ids[3]]));

    // After a job that is dead already: cancelled at once (or free with `always`).
    let mut free = after("f", &[After::Job(ids[0])]);
    free.after_policy = AfterPolicy::Always;
    let s = store
        .submit(vec![after("e", &[After::Job(ids[0])]), free], WINDOW)
        .await
        .unwrap();
    assert_eq!(s[0].state, JobState::Cancelled);
    assert_eq!(
        store.get(s[0].id).await.unwrap().error.unwrap().name,
        "DependencyFailed"
    );
    assert_eq!(s[1].state, JobState::Queued);
    harness.check_counts().await;
}

/// A cancel of a dependency cancels its waiting dependents; a delete of an unfinished one
/// cancels them too (or releases an `always` one); a cancelled dependent is left out when its
/// other dependency ends; a waiting job can be cancelled and deleted itself.
pub async fn cancel_and_delete_release_dependents<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let mut always = after("y", &[After::Item(2)]);
    always.after_policy = AfterPolicy::Always;
    let s = store
        .submit(
            vec![
                job("a", "node"),
                after("b", &[After::Item(0)]),
                job("x", "node"),
                always,
                after("z", &[After::Item(2)]),
                after("w", &[After::Item(0), After::Item(2)]),
            ],
            WINDOW,
        )
        .await
        .unwrap();
    let ids: Vec<JobId> = s.iter().map(|s| s.id).collect();
    store.cancel(ids[0]).await.unwrap();
    assert_eq!(state(&*store, ids[1]).await, JobState::Cancelled);
    // `w` was cancelled by `a`; `x` ending later leaves it as it is.
    assert_eq!(state(&*store, ids[5]).await, JobState::Cancelled);
    harness.check_counts().await;

    assert_eq!(store.delete(ids[2]).await.unwrap(), JobState::Queued);
    assert_eq!(state(&*store, ids[3]).await, JobState::Queued);
    let z = store.get(ids[4]).await.unwrap();
    assert_eq!(z.state, JobState::Cancelled);
    assert!(
        z.error.unwrap().message.contains("deleted"),
        "the error says the dependency was deleted"
    );
    assert_eq!(state(&*store, ids[5]).await, JobState::Cancelled);
    harness.check_counts().await;

    // A waiting job itself: cancelled, or deleted; its dependency ends without it.
    let s = store
        .submit(
            vec![
                job("p", "node"),
                after("q", &[After::Item(0)]),
                after("r", &[After::Item(0)]),
            ],
            WINDOW,
        )
        .await
        .unwrap();
    assert_eq!(
        store.cancel(s[1].id).await.unwrap(),
        crate::CancelResult::Cancelled
    );
    assert_eq!(store.delete(s[2].id).await.unwrap(), JobState::Waiting);
    claim_all(&*store).await;
    store
        .complete(vec![completion(s[0].id, 1, succeeded(json!(1)))])
        .await
        .unwrap();
    assert_eq!(state(&*store, s[1].id).await, JobState::Cancelled);
    assert!(matches!(
        store.get(s[2].id).await,
        Err(StoreError::NotFound)
    ));
    harness.check_counts().await;
}

/// An unknown id, an item that is not earlier in the batch, or too many ids refuse the whole
/// batch, naming `after`; nothing is created.
pub async fn bad_after_is_refused_whole<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let known = store.submit(vec![job("k", "node")], WINDOW).await.unwrap()[0].id;
    let cases = [
        vec![job("a", "node"), after("b", &[After::Job(JobId::now_v7())])],
        vec![job("a", "node"), after("b", &[After::Item(1)])],
        vec![after("b", &[After::Item(3)]), job("a", "node")],
        vec![
            job("a", "node"),
            after("b", &vec![After::Job(known); MAX_AFTER + 1]),
        ],
    ];
    for batch in cases {
        match store.submit(batch, WINDOW).await {
            Err(StoreError::Limit(e)) => assert_eq!(e.field, "after", "{e}"),
            other => panic!("{other:?}"),
        }
    }
    let page = store
        .list(crate::ListFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.jobs.len(), 1, "only the first job exists");
    // The known job gained no dependents: it ends as any job does.
    assert_eq!(claim_all(&*store).await, HashSet::from([known]));
    store
        .complete(vec![completion(known, 1, succeeded(json!(1)))])
        .await
        .unwrap();
    harness.check_counts().await;
}

/// Two dependencies of one job ending at the same time (two connections, on a shared store
/// two nodes) release it exactly once; submits of dependents racing the end of their
/// dependency are never left waiting.
pub async fn concurrent_ends_release_the_dependent<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    for round in 0..10 {
        let s = store
            .submit(
                vec![
                    job("a", "node"),
                    job("b", "node"),
                    after("c", &[After::Item(0), After::Item(1)]),
                ],
                WINDOW,
            )
            .await
            .unwrap();
        let (a, b, c) = (s[0].id, s[1].id, s[2].id);
        assert_eq!(claim_all(&*store).await, HashSet::from([a, b]));
        let (s1, s2) = (store.clone(), store.clone());
        let t1 = tokio::spawn(async move {
            s1.complete(vec![completion(a, 1, succeeded(json!(1)))])
                .await
        });
        let t2 = tokio::spawn(async move {
            s2.complete(vec![completion(b, 1, succeeded(json!(2)))])
                .await
        });
        // A dependent submitted while they end: waiting on what is left, or free.
        let late = store
            .submit(vec![after("d", &[After::Job(a), After::Job(b)])], WINDOW)
            .await
            .unwrap()[0]
            .id;
        t1.await.unwrap().unwrap();
        t2.await.unwrap().unwrap();
        let v = store.get(c).await.unwrap();
        assert_eq!(
            (v.state, v.waiting_on),
            (JobState::Queued, 0),
            "round {round}"
        );
        assert_eq!(
            state(&*store, late).await,
            JobState::Queued,
            "round {round}"
        );
        assert_eq!(claim_all(&*store).await, HashSet::from([c, late]));
        for id in [c, late] {
            store
                .complete(vec![completion(id, 1, succeeded(json!(0)))])
                .await
                .unwrap();
        }
    }
    harness.check_counts().await;
}

/// A chain far deeper than any trigger recursion limit (`DEEP_CHAIN` jobs, each after the one
/// before): its head dead cancels every link, in the one transaction that ends the head, and
/// the counts stay true. Guards the release against SQLite's trigger depth (1,000) and
/// PostgreSQL's stack depth.
pub async fn a_deep_chain_is_cancelled_whole<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    const DEEP_CHAIN: usize = 2_500;
    const BATCH: usize = 500;
    let harness = fresh().await;
    let store = harness.store();
    let head = store
        .submit(vec![job("head", "node")], WINDOW)
        .await
        .unwrap()[0]
        .id;
    let mut ids = vec![head];
    while ids.len() < DEEP_CHAIN {
        let last = *ids.last().unwrap();
        let batch: Vec<NewJob> = (0..BATCH)
            .map(|k| match k {
                0 => after("link", &[After::Job(last)]),
                k => after("link", &[After::Item(k - 1)]),
            })
            .collect();
        let s = store.submit(batch, WINDOW).await.unwrap();
        assert!(s.iter().all(|s| s.state == JobState::Waiting));
        ids.extend(s.iter().map(|s| s.id));
    }
    assert_eq!(claim_all(&*store).await, HashSet::from([head]));
    store
        .complete(vec![completion(
            head,
            1,
            Transition::Dead {
                error: error("boom"),
            },
        )])
        .await
        .unwrap();
    for (k, id) in ids.iter().enumerate().skip(1) {
        let v = store.get(*id).await.unwrap();
        assert_eq!(v.state, JobState::Cancelled, "link {k} of {}", ids.len());
    }
    harness.check_counts().await;
}
