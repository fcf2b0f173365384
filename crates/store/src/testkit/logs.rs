//! Cases of the conformance suite about job logs: `append_logs` and `logs`.

use std::future::Future;

use super::{completion, demand, error, job, Harness, LEASE, NODE, WINDOW};
use crate::logs::{
    LogLine, LogQuery, LogStream, DEFAULT_LOG_ATTEMPTS, MAX_LOG_BATCH, MAX_LOG_PAGE,
};
use crate::{now_ms, JobId, JobState, StoreError, Transition};

/// Line `seq` of `attempt` of `id` on `stream`, with text `text`.
fn line(id: JobId, attempt: u32, seq: u32, stream: LogStream, text: &str) -> LogLine {
    LogLine {
        job_id: id,
        attempt,
        seq,
        stream,
        at: now_ms(),
        line: text.into(),
        shared: false,
        marker: false,
    }
}

/// `limit` lines from the start of `attempt` (all when `None`).
fn page(attempt: Option<u32>, limit: usize) -> LogQuery {
    LogQuery {
        attempt,
        after: None,
        limit,
    }
}

/// Each attempt keeps its own lines in order (stdout, stderr, the cut marker), across a
/// reopen; a page continues after a position; a line stored twice or for an unknown job is
/// skipped; a manual retry keeps them and numbers the next attempt on; deleting the job
/// deletes them.
pub async fn logs_are_kept_per_attempt_and_go_with_their_job<
    H: Harness,
    Fut: Future<Output = H>,
>(
    fresh: impl FnOnce() -> Fut,
) {
    let mut harness = fresh().await;
    let store = harness.store();
    let id = store.submit(vec![job("a", "node")], WINDOW).await.unwrap()[0].id;
    let c = store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    assert_eq!(c[0].attempt, 1);
    let mut marker = line(id, 1, 2, LogStream::Stderr, "[3 lines dropped]");
    marker.marker = true;
    let first = vec![
        line(id, 1, 0, LogStream::Stdout, "one"),
        line(id, 1, 1, LogStream::Stderr, "two ✓"),
        marker,
    ];
    store.append_logs(first.clone()).await.unwrap();
    // Again (a batch that ran twice), and a line of a job that does not exist.
    store
        .append_logs(vec![
            first[0].clone(),
            line(JobId::now_v7(), 1, 0, LogStream::Stdout, "nobody's"),
        ])
        .await
        .unwrap();
    store
        .complete(vec![completion(
            id,
            1,
            Transition::Retry {
                error: error("boom"),
                run_at: now_ms(),
            },
        )])
        .await
        .unwrap();
    let c = store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    assert_eq!(c[0].attempt, 2);
    let mut shared = line(id, 2, 0, LogStream::Stdout, "second");
    shared.shared = true;
    store.append_logs(vec![shared.clone()]).await.unwrap();

    drop(store);
    let store = harness.reopen().await;
    let all = store.logs(id, page(None, 100)).await.unwrap();
    let mut want = first.clone();
    want.push(shared.clone());
    assert_eq!(all, want);
    assert_eq!(store.logs(id, page(Some(1), 100)).await.unwrap(), first);
    assert_eq!(
        store.logs(id, page(Some(2), 100)).await.unwrap(),
        vec![shared.clone()]
    );
    assert!(store.logs(id, page(Some(3), 100)).await.unwrap().is_empty());
    assert_eq!(store.logs(id, page(None, 2)).await.unwrap(), first[..2]);
    let rest = LogQuery {
        attempt: None,
        after: Some((1, 1)),
        limit: 100,
    };
    assert_eq!(
        store.logs(id, rest).await.unwrap(),
        vec![first[2].clone(), shared]
    );
    assert!(store
        .logs(JobId::now_v7(), page(None, 100))
        .await
        .unwrap()
        .is_empty());
    for limit in [0, MAX_LOG_PAGE + 1] {
        let e = store.logs(id, page(None, limit)).await.unwrap_err();
        assert!(
            matches!(e, StoreError::Limit(ref l) if l.field == "limit"),
            "{e}"
        );
    }
    let many = vec![line(id, 2, 1, LogStream::Stdout, "x"); MAX_LOG_BATCH + 1];
    let e = store.append_logs(many).await.unwrap_err();
    assert!(matches!(e, StoreError::Limit(_)), "{e}");

    // Dead, then retried by hand: the old lines stay, the next attempt is the third.
    store
        .complete(vec![completion(
            id,
            2,
            Transition::Dead {
                error: error("boom"),
            },
        )])
        .await
        .unwrap();
    assert_eq!(store.retry(id).await.unwrap(), JobState::Queued);
    assert_eq!(store.logs(id, page(None, 100)).await.unwrap(), want);

    // Deleted: its lines go with it.
    let c = store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    assert_eq!(c[0].attempt, 3);
    store
        .append_logs(vec![line(id, 3, 0, LogStream::Stdout, "again")])
        .await
        .unwrap();
    assert_eq!(store.logs(id, page(Some(3), 100)).await.unwrap().len(), 1);
    store
        .complete(vec![completion(
            id,
            3,
            Transition::Dead {
                error: error("boom"),
            },
        )])
        .await
        .unwrap();
    assert_eq!(store.logs(id, page(None, 100)).await.unwrap().len(), 5);
    store.delete(id).await.unwrap();
    assert!(store.logs(id, page(None, 100)).await.unwrap().is_empty());
    harness.check_counts().await;
}

/// Retried by hand over and over, a job keeps the logs of its last
/// [`DEFAULT_LOG_ATTEMPTS`] attempts only: each retry deletes the older ones (counted in
/// attempts with lines, not in time).
pub async fn a_retry_keeps_the_logs_of_the_last_attempts_only<
    H: Harness,
    Fut: Future<Output = H>,
>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let mut once = job("once", "node");
    once.max_attempts = 1;
    let id = store.submit(vec![once], WINDOW).await.unwrap()[0].id;
    let rounds = DEFAULT_LOG_ATTEMPTS + 5;
    for attempt in 1..=rounds {
        let c = store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
        assert_eq!((c[0].id, c[0].attempt), (id, attempt));
        let text = format!("attempt {attempt}");
        store
            .append_logs(vec![line(id, attempt, 0, LogStream::Stdout, &text)])
            .await
            .unwrap();
        store
            .complete(vec![completion(
                id,
                attempt,
                Transition::Dead {
                    error: error("boom"),
                },
            )])
            .await
            .unwrap();
        store.retry(id).await.unwrap();
        let kept: Vec<u32> = store
            .logs(id, page(None, 1_000))
            .await
            .unwrap()
            .iter()
            .map(|l| l.attempt)
            .collect();
        let first = attempt.saturating_sub(DEFAULT_LOG_ATTEMPTS) + 1;
        assert_eq!(
            kept,
            (first..=attempt).collect::<Vec<_>>(),
            "after {attempt}"
        );
    }
    // Every attempt itself stays in the job's history.
    let r = store.get(id).await.unwrap();
    assert_eq!(r.attempts.len(), rounds as usize);
    assert_eq!(r.attempt, rounds);
    harness.check_counts().await;
}
