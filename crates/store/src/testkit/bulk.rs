//! Cases of the conformance suite about `delete` and `bulk` retry/delete by a filter.

use std::future::Future;

use super::{completion, demand, error, job, succeeded, Harness, LEASE, NODE, WINDOW};
use crate::bulk::MAX_BULK;
use crate::{
    BulkAction, BulkOutcome, JobFilter, JobId, JobState, ListFilter, StoreError, Transition,
};

/// Submits `names` in pool `node` (each its own job), claims them and ends each with `then`.
async fn ended<H: Harness>(h: &H, names: &[&str], then: &Transition) -> Vec<JobId> {
    let store = h.store();
    let ids: Vec<JobId> = store
        .submit(names.iter().map(|n| job(n, "node")).collect(), WINDOW)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    let claimed = store
        .claim(NODE, &demand("node", names.len()), LEASE)
        .await
        .unwrap();
    assert_eq!(claimed.len(), names.len());
    store
        .complete(
            claimed
                .iter()
                .map(|c| completion(c.id, c.attempt, then.clone()))
                .collect(),
        )
        .await
        .unwrap();
    ids
}

/// One job is deleted in any state but `running` (refused: cancel it first), with its
/// attempts and its idempotency key; an unknown id is not found.
pub async fn delete_one_job<H: Harness, Fut: Future<Output = H>>(fresh: impl FnOnce() -> Fut) {
    let harness = fresh().await;
    let store = harness.store();
    let dead = ended(
        &harness,
        &["a"],
        &Transition::Dead {
            error: error("boom"),
        },
    )
    .await[0];
    let mut keyed = job("k", "node");
    keyed.idempotency_key = Some("key-1".into());
    let queued = store.submit(vec![keyed.clone()], WINDOW).await.unwrap()[0].id;
    let running = store.submit(vec![job("r", "node")], WINDOW).await.unwrap()[0].id;
    // Delete the queued one first: the next claim takes the other.
    assert_eq!(store.delete(queued).await.unwrap(), JobState::Queued);
    assert!(matches!(store.get(queued).await, Err(StoreError::NotFound)));
    let c = store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    assert_eq!(c[0].id, running);
    let err = store.delete(running).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("cancel")),
        "{err}"
    );
    assert_eq!(store.get(running).await.unwrap().state, JobState::Running);
    assert_eq!(store.delete(dead).await.unwrap(), JobState::Dead);
    assert!(matches!(store.get(dead).await, Err(StoreError::NotFound)));
    assert!(matches!(
        store.delete(JobId::now_v7()).await,
        Err(StoreError::NotFound)
    ));
    // The key is free: the same key with other params is a new job, not a conflict.
    keyed.params = serde_json::json!({"other": true});
    let again = store.submit(vec![keyed], WINDOW).await.unwrap();
    assert!(!again[0].duplicate);
    assert_ne!(again[0].id, queued);
    harness.check_counts().await;
}

/// Bulk retry and delete act on the jobs matching the filter, at most `limit`, and say when
/// more match; states the action does not take and limits out of range are refused.
pub async fn bulk_retry_and_delete_by_filter<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let dead = Transition::Dead {
        error: error("boom"),
    };
    ended(&harness, &["a", "a", "a", "b"], &dead).await;
    ended(&harness, &["a"], &succeeded(serde_json::json!(1))).await;
    let dead_a = JobFilter {
        states: vec![JobState::Dead],
        job: Some("a".into()),
        ..JobFilter::default()
    };

    // Refusals change nothing.
    for (action, states) in [
        (BulkAction::Retry, vec![JobState::Succeeded]),
        (BulkAction::Delete, vec![JobState::Running]),
        (BulkAction::Delete, vec![]),
    ] {
        let f = JobFilter {
            states,
            ..JobFilter::default()
        };
        let err = store.bulk(action, &f, 10).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    }
    for limit in [0, MAX_BULK + 1] {
        let err = store
            .bulk(BulkAction::Retry, &dead_a, limit)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Limit(ref l) if l.field == "limit"),
            "{err}"
        );
    }
    // A time range that holds none.
    let none = JobFilter {
        until: Some(0),
        ..dead_a.clone()
    };
    assert_eq!(
        store.bulk(BulkAction::Retry, &none, 10).await.unwrap(),
        BulkOutcome {
            affected: 0,
            more: false
        }
    );

    assert_eq!(
        store.bulk(BulkAction::Retry, &dead_a, 2).await.unwrap(),
        BulkOutcome {
            affected: 2,
            more: true
        }
    );
    assert_eq!(
        store.bulk(BulkAction::Retry, &dead_a, 2).await.unwrap(),
        BulkOutcome {
            affected: 1,
            more: false
        }
    );
    let state_count = |state| {
        let store = harness.store();
        async move {
            store
                .list(ListFilter {
                    state: Some(state),
                    limit: 100,
                    ..ListFilter::default()
                })
                .await
                .unwrap()
                .jobs
                .len()
        }
    };
    assert_eq!(state_count(JobState::Queued).await, 3);
    assert_eq!(state_count(JobState::Dead).await, 1);
    // Retried in bulk as one by one: the attempts are numbered on (1 done, the next is 2).
    let queued = store
        .list(ListFilter {
            state: Some(JobState::Queued),
            limit: 100,
            ..ListFilter::default()
        })
        .await
        .unwrap()
        .jobs;
    for j in &queued {
        let r = store.get(j.id).await.unwrap();
        assert_eq!((r.attempt, r.attempts.len()), (1, 1), "{}", j.id);
    }

    // Delete every finished job of pool `node`: the dead `b` and the succeeded `a`.
    let finished = JobFilter {
        states: vec![JobState::Succeeded, JobState::Dead, JobState::Cancelled],
        pool: Some("node".into()),
        ..JobFilter::default()
    };
    assert_eq!(
        store
            .bulk(BulkAction::Delete, &finished, 100)
            .await
            .unwrap(),
        BulkOutcome {
            affected: 2,
            more: false
        }
    );
    assert_eq!(state_count(JobState::Dead).await, 0);
    assert_eq!(state_count(JobState::Succeeded).await, 0);
    assert_eq!(state_count(JobState::Queued).await, 3);
    harness.check_counts().await;
}
