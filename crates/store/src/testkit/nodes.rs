//! Cases of the conformance suite about the node registry (`register_node`, `heartbeat`,
//! `nodes`, `drain_node`, `stop_node`, `purge_nodes`) and about a job handed back by a draining
//! node (`Transition::HandBack`).

use std::future::Future;
use std::time::Duration;

use super::{completion, demand, job, Harness, LEASE, NODE, WINDOW};
use crate::nodes::MAX_DRAIN_DEADLINE_MS;
use crate::{
    AfterDrain, Beat, DrainRequest, JobState, NodeStart, NodeState, Store, StoreError, Transition,
};

fn start(id: &str) -> NodeStart {
    NodeStart {
        id: id.into(),
        host: "host-1".into(),
        version: "0.0.0-test".into(),
        pools: vec!["node".into()],
        capacity: 4,
    }
}

fn beat(running: u32) -> Beat {
    Beat {
        running,
        capacity: 4,
        load1: Some(0.25),
        pools: vec!["node".into(), "python".into()],
    }
}

async fn state_of(store: &dyn Store, id: &str) -> NodeState {
    let nodes = store.nodes().await.unwrap();
    nodes.iter().find(|n| n.id == id).unwrap().state
}

/// A node registers, heartbeats, is drained (draining while it runs jobs, drained once it runs
/// none), undrained and stopped; a live id refuses a second start unless taken over; unknown
/// ids and out-of-bound values are refused; old rows are purged.
pub async fn nodes_register_heartbeat_drain_and_stop<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let live = Duration::from_secs(30);
    store.register_node(&start("a"), live, None).await.unwrap();
    let nodes = store.nodes().await.unwrap();
    assert_eq!(nodes.len(), 1);
    let a = &nodes[0];
    assert_eq!(
        (a.id.as_str(), a.host.as_str(), a.version.as_str(), a.state),
        ("a", "host-1", "0.0.0-test", NodeState::Active)
    );
    assert_eq!(
        (a.pools.clone(), a.capacity, a.running),
        (vec!["node".to_owned()], 4, 0)
    );
    assert!(a.drain.is_none());
    assert!(!a.is_lost(live));

    // The id is live: a second start is refused, naming what to fix.
    let e = store
        .register_node(&start("a"), live, None)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NodeInUse { .. }), "{e}");
    assert!(e.to_string().contains("--node-id"), "{e}");
    // Taken over when the caller saw that heartbeat stay (the node that wrote it is gone).
    let seen = store.nodes().await.unwrap()[0].heartbeat_at;
    store
        .register_node(&start("a"), live, Some(seen))
        .await
        .unwrap();

    assert_eq!(store.heartbeat("a", &beat(2)).await.unwrap(), None);
    let a = store.nodes().await.unwrap().remove(0);
    assert_eq!((a.running, a.load1), (2, Some(0.25)));
    assert_eq!(a.pools, ["node", "python"]);

    let order = DrainRequest {
        deadline_ms: 5_000,
        then: AfterDrain::Idle,
    };
    let a = store.drain_node("a", Some(order)).await.unwrap();
    assert_eq!(a.state, NodeState::Draining);
    let d = a.drain.unwrap();
    assert_eq!((d.deadline_ms, d.then), (5_000, AfterDrain::Idle));
    assert!(d.remaining_ms <= 5_000);
    let got = store.heartbeat("a", &beat(1)).await.unwrap().unwrap();
    assert_eq!(
        (got.requested_at, got.then),
        (d.requested_at, AfterDrain::Idle)
    );
    assert_eq!(state_of(&*store, "a").await, NodeState::Draining);
    assert!(store.heartbeat("a", &beat(0)).await.unwrap().is_some());
    assert_eq!(state_of(&*store, "a").await, NodeState::Drained);
    // A deadline of 0: past at once.
    let now = DrainRequest {
        deadline_ms: 0,
        then: AfterDrain::Exit,
    };
    let a = store.drain_node("a", Some(now)).await.unwrap();
    assert_eq!(a.drain.unwrap().remaining_ms, 0);
    assert_eq!(a.drain.unwrap().then, AfterDrain::Exit);

    let a = store.drain_node("a", None).await.unwrap();
    assert_eq!((a.state, a.drain), (NodeState::Active, None));
    assert_eq!(store.heartbeat("a", &beat(0)).await.unwrap(), None);
    assert_eq!(state_of(&*store, "a").await, NodeState::Active);

    // Unknown ids, out-of-bound values.
    assert!(matches!(
        store.drain_node("nobody", Some(order)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.heartbeat("nobody", &beat(0)).await,
        Err(StoreError::NotFound)
    ));
    let long = DrainRequest {
        deadline_ms: MAX_DRAIN_DEADLINE_MS + 1,
        then: AfterDrain::Idle,
    };
    assert!(matches!(
        store.drain_node("a", Some(long)).await,
        Err(StoreError::Limit(_))
    ));
    assert!(matches!(
        store.register_node(&start("a/b"), live, None).await,
        Err(StoreError::Limit(_))
    ));

    // A clean exit: stopped; its id starts again at once, without the old drain order.
    store.drain_node("a", Some(order)).await.unwrap();
    store.stop_node("a").await.unwrap();
    let a = store.nodes().await.unwrap().remove(0);
    assert_eq!((a.state, a.running), (NodeState::Stopped, 0));
    assert!(!a.is_lost(Duration::ZERO));
    // A heartbeat that was in flight when the node stopped (its loop runs until the process
    // ends) cannot bring the row back: it stays stopped, with the stop's heartbeat and load.
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.heartbeat("a", &beat(2)).await.unwrap();
    let late = store.nodes().await.unwrap().remove(0);
    assert_eq!(
        (late.state, late.running, late.heartbeat_at),
        (NodeState::Stopped, 0, a.heartbeat_at)
    );
    store.register_node(&start("a"), live, None).await.unwrap();
    let a = store.nodes().await.unwrap().remove(0);
    assert_eq!((a.state, a.drain), (NodeState::Active, None));

    // Purge: rows whose heartbeat is older than the bound go, fresh ones stay.
    store.register_node(&start("b"), live, None).await.unwrap();
    store.stop_node("b").await.unwrap();
    assert_eq!(
        store.purge_nodes(Duration::from_secs(3600)).await.unwrap(),
        0
    );
    // Let the store's clock move past the stop (a ms), then purge every row older than now.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(store.purge_nodes(Duration::ZERO).await.unwrap(), 2);
    assert!(store.nodes().await.unwrap().is_empty());
}

/// A job handed back by a draining node is queued again at once with its attempt uncounted
/// (its next claim runs the same attempt number; the handed-back run is recorded); a cancel
/// asked while it ran wins.
pub async fn a_handed_back_job_is_requeued_without_counting_the_attempt<
    H: Harness,
    Fut: Future<Output = H>,
>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let ids: Vec<_> = store
        .submit(vec![job("a", "node"), job("b", "node")], WINDOW)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    let c = store.claim(NODE, &demand("node", 2), LEASE).await.unwrap();
    assert_eq!(c.len(), 2);
    store.cancel(ids[1]).await.unwrap();
    store
        .complete(vec![
            completion(ids[0], 1, Transition::HandBack),
            completion(ids[1], 1, Transition::HandBack),
        ])
        .await
        .unwrap();
    let r = store.get(ids[0]).await.unwrap();
    assert_eq!((r.state, r.attempt, r.node), (JobState::Queued, 0, None));
    assert_eq!(r.attempts.len(), 1);
    assert_eq!(r.attempts[0].outcome.as_deref(), Some("handed_back"));
    assert_eq!(store.get(ids[1]).await.unwrap().state, JobState::Cancelled);
    harness.check_counts().await;

    let c = store
        .claim("node-b", &demand("node", 2), LEASE)
        .await
        .unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].id, c[0].attempt), (ids[0], 1));
    let mut done = completion(ids[0], 1, super::succeeded(serde_json::json!(1)));
    done.node = "node-b".into();
    store.complete(vec![done]).await.unwrap();
    let r = store.get(ids[0]).await.unwrap();
    assert_eq!((r.state, r.attempt), (JobState::Succeeded, 1));
    let outcomes: Vec<_> = r
        .attempts
        .iter()
        .map(|a| {
            (
                a.attempt,
                a.node.clone().unwrap(),
                a.outcome.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (1, NODE.to_owned(), "handed_back".to_owned()),
            (1, "node-b".to_owned(), "succeeded".to_owned())
        ]
    );
    harness.check_counts().await;
}
