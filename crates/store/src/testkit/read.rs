//! Cases of the conformance suite about the reads: `list` (order, filters, cursor, limits) and
//! `counts`.

use std::future::Future;

use serde_json::json;

use super::{completion, demand, job, succeeded, Harness, LEASE, NODE, WINDOW};
use crate::{now_ms, JobState, ListFilter, StoreError};

/// List is newest first, filters, and pages with a cursor.
pub async fn list_newest_first_with_filters_and_cursor<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let jobs: Vec<_> = (0..25)
        .map(|i| job(if i % 2 == 0 { "even" } else { "odd" }, "node"))
        .collect();
    let ids: Vec<_> = store
        .submit(jobs, WINDOW)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    // Newest first, paged by 10.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list(ListFilter {
                limit: 10,
                cursor: cursor.take(),
                ..ListFilter::default()
            })
            .await
            .unwrap();
        assert!(page.jobs.len() <= 10);
        assert!(page.jobs.iter().all(|j| j.attempts.is_empty()));
        seen.extend(page.jobs.iter().map(|j| j.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let odd = store
        .list(ListFilter {
            job: Some("odd".into()),
            limit: 100,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(odd.jobs.len(), 12);
    assert_eq!(odd.next_cursor, None);
    assert!(odd.jobs.iter().all(|j| j.job == "odd"));

    store.claim(NODE, &demand("node", 3), LEASE).await.unwrap();
    let running = store
        .list(ListFilter {
            state: Some(JobState::Running),
            job: Some("even".into()),
            ..ListFilter::default()
        })
        .await
        .unwrap();
    // The first three claimed: ids[0] (even), ids[1] (odd), ids[2] (even).
    let got: Vec<_> = running.jobs.iter().map(|j| j.id).collect();
    assert_eq!(got, [ids[2], ids[0]]);

    let err = store
        .list(ListFilter {
            cursor: Some("not a cursor".into()),
            ..ListFilter::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)));
}

/// List caps its limit.
pub async fn list_caps_the_limit<H: Harness, Fut: Future<Output = H>>(fresh: impl FnOnce() -> Fut) {
    let harness = fresh().await;
    let store = harness.store();
    for _ in 0..11 {
        store
            .submit((0..100).map(|_| job("x", "node")).collect(), WINDOW)
            .await
            .unwrap();
    }
    let page = store
        .list(ListFilter {
            limit: 5_000,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page.jobs.len(), 1_000);
    let next = store
        .list(ListFilter {
            limit: 5_000,
            cursor: page.next_cursor,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!((next.jobs.len(), next.next_cursor), (100, None));
    let default = store.list(ListFilter::default()).await.unwrap();
    assert_eq!(default.jobs.len(), 100);
}

/// Counts follow every transition.
pub async fn counts_follow_every_transition<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    assert!(store.counts().await.unwrap().is_empty());
    let mut later = job("later", "node");
    later.run_at = Some(now_ms() + 60_000);
    store
        .submit(
            vec![
                job("a", "node"),
                job("b", "node"),
                later,
                job("p", "python"),
            ],
            WINDOW,
        )
        .await
        .unwrap();
    let c = store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    let key = |p: &str, s| (p.to_string(), s);
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.get(&key("node", JobState::Queued)), Some(&1));
    assert_eq!(counts.get(&key("node", JobState::Running)), Some(&1));
    assert_eq!(counts.get(&key("node", JobState::Scheduled)), Some(&1));
    assert_eq!(counts.get(&key("python", JobState::Queued)), Some(&1));
    assert_eq!(counts.len(), 4);

    store
        .complete(vec![completion(c[0].id, 1, succeeded(json!(null)))])
        .await
        .unwrap();
    let counts = store.counts().await.unwrap();
    assert_eq!(
        counts.get(&key("node", JobState::Running)),
        None,
        "zeros are left out"
    );
    assert_eq!(counts.get(&key("node", JobState::Succeeded)), Some(&1));
    store.purge(now_ms() + 1).await.unwrap();
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.get(&key("node", JobState::Succeeded)), None);
    assert_eq!(counts.values().sum::<u64>(), 3);
    harness.check_counts().await;
}
