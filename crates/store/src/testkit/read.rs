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

/// List filters by cron schedule and by submit time (`since` inclusive, `until` exclusive),
/// with the cursor, and a job shows the schedule that submitted it.
pub async fn list_filters_by_schedule_and_time<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let run = |schedule: &str, tick| {
        let mut j = job("tick.js", "node");
        j.cron = Some(crate::CronTick {
            schedule: schedule.into(),
            tick,
        });
        j
    };
    let plain = store.submit(vec![job("x", "node")], WINDOW).await.unwrap()[0].id;
    let mut nightly = Vec::new();
    for t in 0..5 {
        nightly.push(store.submit(vec![run("nightly", t)], WINDOW).await.unwrap()[0].id);
        store.submit(vec![run("hourly", t)], WINDOW).await.unwrap();
    }
    let s = &store;
    let list = |f: ListFilter| async move { s.list(f).await.unwrap() };
    let page = list(ListFilter {
        schedule: Some("nightly".into()),
        limit: 3,
        ..ListFilter::default()
    })
    .await;
    let got: Vec<_> = page.jobs.iter().map(|j| j.id).collect();
    assert_eq!(got, [nightly[4], nightly[3], nightly[2]]);
    assert!(page
        .jobs
        .iter()
        .all(|j| j.schedule.as_deref() == Some("nightly")));
    let rest = list(ListFilter {
        schedule: Some("nightly".into()),
        cursor: page.next_cursor,
        ..ListFilter::default()
    })
    .await;
    let got: Vec<_> = rest.jobs.iter().map(|j| j.id).collect();
    assert_eq!(got, [nightly[1], nightly[0]]);
    assert_eq!(store.get(plain).await.unwrap().schedule, None);
    assert_eq!(
        list(ListFilter {
            schedule: Some("weekly".into()),
            ..ListFilter::default()
        })
        .await
        .jobs,
        []
    );

    // Time bounds, from the jobs' own (time-ordered) ids: a bound in the future or the past.
    let now = now_ms();
    let all = list(ListFilter::default()).await.jobs.len();
    assert_eq!(all, 11);
    let since_future = list(ListFilter {
        since: Some(now + 60_000),
        ..ListFilter::default()
    })
    .await;
    assert_eq!(since_future.jobs, []);
    let until_past = list(ListFilter {
        until: Some(now - 3_600_000),
        ..ListFilter::default()
    })
    .await;
    assert_eq!(until_past.jobs, []);
    let window = list(ListFilter {
        since: Some(now - 3_600_000),
        until: Some(now + 60_000),
        schedule: Some("hourly".into()),
        ..ListFilter::default()
    })
    .await;
    assert_eq!(window.jobs.len(), 5);
    // A job is inside a window around its own creation time (the id's clock is the
    // submitting process's, `created_at` may be the database's: a second either side).
    let first = store.get(nightly[0]).await.unwrap();
    let at = list(ListFilter {
        since: Some(first.created_at - 1_000),
        until: Some(first.created_at + 1_000),
        schedule: Some("nightly".into()),
        ..ListFilter::default()
    })
    .await;
    assert!(at.jobs.iter().any(|j| j.id == nightly[0]), "{at:?}");
}
