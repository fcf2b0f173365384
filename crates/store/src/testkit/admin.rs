//! Cases of the conformance suite about `cancel`, `retry` and `purge`.

use std::future::Future;
use std::time::Duration;

use serde_json::json;

use super::{completion, demand, error, job, succeeded, Harness, LEASE, NODE, WINDOW};
use crate::{now_ms, CancelResult, JobId, JobState, StoreError, Transition};

/// Cancel answers right in every state.
pub async fn cancel_in_every_state<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let mut later = job("later", "node");
    later.run_at = Some(now_ms() + 60_000);
    let s = store
        .submit(vec![job("queued", "node"), later], WINDOW)
        .await
        .unwrap();
    assert_eq!(
        store.cancel(s[0].id).await.unwrap(),
        CancelResult::Cancelled
    );
    assert_eq!(
        store.cancel(s[1].id).await.unwrap(),
        CancelResult::Cancelled
    );
    assert_eq!(store.get(s[1].id).await.unwrap().state, JobState::Cancelled);
    assert_eq!(
        store.cancel(s[0].id).await.unwrap(),
        CancelResult::AlreadyDone(JobState::Cancelled)
    );
    assert!(store
        .claim(NODE, &demand("node", 10), LEASE)
        .await
        .unwrap()
        .is_empty());

    // failed → cancelled
    let f = store.submit(vec![job("f", "node")], WINDOW).await.unwrap()[0].id;
    store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    store
        .complete(vec![completion(
            f,
            1,
            Transition::Retry {
                error: error("x"),
                run_at: now_ms() + 60_000,
            },
        )])
        .await
        .unwrap();
    assert_eq!(store.cancel(f).await.unwrap(), CancelResult::Cancelled);

    // running → requested, then the node completes it as cancelled.
    let r = store.submit(vec![job("r", "node")], WINDOW).await.unwrap()[0].id;
    store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    assert_eq!(store.cancel(r).await.unwrap(), CancelResult::Requested);
    assert_eq!(store.cancel(r).await.unwrap(), CancelResult::Requested);
    let rec = store.get(r).await.unwrap();
    assert_eq!((rec.state, rec.cancel_requested), (JobState::Running, true));
    store
        .complete(vec![completion(r, 1, Transition::Cancelled)])
        .await
        .unwrap();
    assert_eq!(store.get(r).await.unwrap().state, JobState::Cancelled);

    // A cancel asked while running wins over a retry.
    let r2 = store.submit(vec![job("r2", "node")], WINDOW).await.unwrap()[0].id;
    store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    store.cancel(r2).await.unwrap();
    store
        .complete(vec![completion(
            r2,
            1,
            Transition::Retry {
                error: error("killed"),
                run_at: now_ms(),
            },
        )])
        .await
        .unwrap();
    let rec = store.get(r2).await.unwrap();
    assert_eq!(
        (rec.state, rec.error),
        (JobState::Cancelled, Some(error("killed")))
    );

    // …and over a recovery: its node is gone, the job does not run again.
    let r3 = store.submit(vec![job("r3", "node")], WINDOW).await.unwrap()[0].id;
    store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    store.cancel(r3).await.unwrap();
    assert_eq!(store.recover(Some(NODE)).await.unwrap(), 1);
    assert_eq!(store.get(r3).await.unwrap().state, JobState::Cancelled);

    // succeeded / dead: already done.
    let ok = store.submit(vec![job("ok", "node")], WINDOW).await.unwrap()[0].id;
    store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    store
        .complete(vec![completion(ok, 1, succeeded(json!(1)))])
        .await
        .unwrap();
    assert_eq!(
        store.cancel(ok).await.unwrap(),
        CancelResult::AlreadyDone(JobState::Succeeded)
    );
    assert!(matches!(
        store.cancel(JobId::now_v7()).await,
        Err(StoreError::NotFound)
    ));
    harness.check_counts().await;
}

/// A job has at most `MAX_ATTEMPTS_PER_JOB` attempts in all: a retry's round is cut to fit, a
/// retry past it is refused naming the bound, and a bulk retry leaves such a job alone.
pub async fn retries_stop_at_the_bound_of_attempts_per_job<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    use crate::bulk::{BulkAction, BulkOutcome, JobFilter};
    use crate::limits::MAX_ATTEMPTS_PER_JOB as BOUND;
    let harness = fresh().await;
    let store = harness.store();
    let mut spent = job("spent", "node");
    spent.max_attempts = 100;
    let id = store.submit(vec![spent], WINDOW).await.unwrap()[0].id;
    for k in 1..=BOUND {
        let c = store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
        assert_eq!((c[0].id, c[0].attempt), (id, k));
        let round_ends = k == BOUND || (k % 100 == 0 && k <= 900);
        let to = if round_ends {
            Transition::Dead { error: error("no") }
        } else {
            Transition::Retry {
                error: error("again"),
                run_at: 0,
            }
        };
        store.complete(vec![completion(id, k, to)]).await.unwrap();
        if k == 950 {
            // Cancelled between two attempts, then retried: the round of 100 is cut to end at
            // the bound (1,000, not 1,050).
            assert_eq!(store.cancel(id).await.unwrap(), CancelResult::Cancelled);
            assert_eq!(store.retry(id).await.unwrap(), JobState::Queued);
            assert_eq!(store.get(id).await.unwrap().max_attempts, BOUND);
        } else if round_ends && k < BOUND {
            assert_eq!(store.retry(id).await.unwrap(), JobState::Queued);
            assert_eq!(store.get(id).await.unwrap().max_attempts, k + 100);
        }
    }
    let r = store.get(id).await.unwrap();
    assert_eq!(
        (r.state, r.attempt, r.max_attempts),
        (JobState::Dead, BOUND, BOUND)
    );
    assert_eq!(r.attempts.len(), BOUND as usize);
    match store.retry(id).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("(1000)"), "{m}"),
        other => panic!("a retry past the bound: {other:?}"),
    }
    assert_eq!(store.get(id).await.unwrap().state, JobState::Dead);

    // A bulk retry of the dead jobs takes the other one and leaves the spent one dead.
    let mut other = job("other", "node");
    other.max_attempts = 1;
    let other = store.submit(vec![other], WINDOW).await.unwrap()[0].id;
    store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    store
        .complete(vec![completion(
            other,
            1,
            Transition::Dead { error: error("no") },
        )])
        .await
        .unwrap();
    let dead = JobFilter {
        states: vec![JobState::Dead],
        ..JobFilter::default()
    };
    assert_eq!(
        store.bulk(BulkAction::Retry, &dead, 1).await.unwrap(),
        BulkOutcome {
            affected: 1,
            more: false
        }
    );
    assert_eq!(store.get(other).await.unwrap().state, JobState::Queued);
    assert_eq!(store.get(id).await.unwrap().state, JobState::Dead);
    assert_eq!(
        store.bulk(BulkAction::Retry, &dead, 10).await.unwrap(),
        BulkOutcome {
            affected: 0,
            more: false
        }
    );
    // Deleting still takes it.
    assert_eq!(
        store.bulk(BulkAction::Delete, &dead, 10).await.unwrap(),
        BulkOutcome {
            affected: 1,
            more: false
        }
    );
    harness.check_counts().await;
}

/// Retry requeues dead and cancelled jobs with a fresh round of attempts, numbered on after
/// the earlier ones (schema v10), and refuses the others.
pub async fn retry_requeues_dead_and_cancelled_jobs_with_fresh_attempts<
    H: Harness,
    Fut: Future<Output = H>,
>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let mut one = job("once", "node");
    one.max_attempts = 1;
    let id = store.submit(vec![one], WINDOW).await.unwrap()[0].id;
    store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    assert!(matches!(
        store.retry(id).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .complete(vec![completion(
            id,
            1,
            Transition::Dead { error: error("no") },
        )])
        .await
        .unwrap();
    assert_eq!(store.retry(id).await.unwrap(), JobState::Queued);
    let r = store.get(id).await.unwrap();
    // The attempt count stays; the job gets its round (1 attempt) again.
    assert_eq!(
        (r.state, r.attempt, r.max_attempts, r.error),
        (JobState::Queued, 1, 2, Some(error("no")))
    );
    assert!(matches!(
        store.retry(id).await,
        Err(StoreError::Conflict(_))
    ));
    let c = store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    assert_eq!((c[0].id, c[0].attempt, c[0].max_attempts), (id, 2, 2));
    store
        .complete(vec![completion(
            id,
            2,
            Transition::Dead {
                error: error("again"),
            },
        )])
        .await
        .unwrap();
    // A second retry: one more attempt again (the round is 1, however often it is retried).
    assert_eq!(store.retry(id).await.unwrap(), JobState::Queued);
    let c = store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    assert_eq!((c[0].id, c[0].attempt, c[0].max_attempts), (id, 3, 3));
    store
        .complete(vec![completion(id, 3, succeeded(json!("third time")))])
        .await
        .unwrap();
    let r = store.get(id).await.unwrap();
    assert_eq!(r.state, JobState::Succeeded);
    // Every attempt is kept, numbered 1, 2, 3, in order, with its own outcome.
    let a: Vec<_> = r
        .attempts
        .iter()
        .map(|a| (a.attempt, a.outcome.clone().unwrap()))
        .collect();
    assert_eq!(
        a,
        [
            (1, "failed".to_string()),
            (2, "failed".to_string()),
            (3, "succeeded".to_string())
        ]
    );
    assert!(matches!(
        store.retry(id).await,
        Err(StoreError::Conflict(_))
    ));

    let c = store.submit(vec![job("c", "node")], WINDOW).await.unwrap()[0].id;
    store.cancel(c).await.unwrap();
    assert_eq!(store.retry(c).await.unwrap(), JobState::Queued);
    assert!(matches!(
        store.retry(JobId::now_v7()).await,
        Err(StoreError::NotFound)
    ));
    harness.check_counts().await;
}

/// Purge deletes old terminal jobs only.
pub async fn purge_deletes_old_terminal_jobs_only<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let mut keyed = job("keyed", "node");
    keyed.idempotency_key = Some("k".into());
    let s = store
        .submit(
            vec![keyed.clone(), job("dead", "node"), job("waiting", "node")],
            WINDOW,
        )
        .await
        .unwrap();
    store.claim(NODE, &demand("node", 2), LEASE).await.unwrap();
    store
        .complete(vec![
            completion(s[0].id, 1, succeeded(json!(1))),
            completion(s[1].id, 1, Transition::Dead { error: error("x") }),
        ])
        .await
        .unwrap();
    let cutoff = now_ms() + 1;
    tokio::time::sleep(Duration::from_millis(5)).await;
    // Finished after the cutoff: kept.
    let late = store
        .submit(vec![job("late", "node")], WINDOW)
        .await
        .unwrap()[0]
        .id;
    store.cancel(late).await.unwrap();

    assert_eq!(store.purge(cutoff).await.unwrap(), 2);
    assert!(matches!(
        store.get(s[0].id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.get(s[1].id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.get(s[2].id).await.unwrap().state, JobState::Queued);
    assert_eq!(store.get(late).await.unwrap().state, JobState::Cancelled);
    assert_eq!(store.purge(cutoff).await.unwrap(), 0);
    // The key of a purged job is free again.
    let again = store.submit(vec![keyed], WINDOW).await.unwrap()[0].clone();
    assert!(!again.duplicate);
    assert_ne!(again.id, s[0].id);
    harness.check_counts().await;
}
