//! Cases of the conformance suite about history: `add_stats` (adds sum into the stored rows,
//! so two nodes merge), `stats` (summed per point, filtered, bounded) and `purge_stats`.

use std::future::Future;
use std::sync::Arc;

use super::Harness;
use crate::stats::{
    bucket_of, series, Metric, StatRow, StatsQuery, BUCKETS, HOUR_MS, MAX_ADD_ROWS, MINUTE_MS,
    PRECISION,
};
use crate::{Store, StoreError};

/// A minute well in the past, on an hour (so hour points start on it).
const T0: i64 = 1_700_000_000_000 / HOUR_MS * HOUR_MS;

fn row(minute: i64, pool: &str, job: &str, metric: Metric, bucket: u16, n: u64) -> StatRow {
    StatRow {
        minute,
        pool: pool.into(),
        job: job.into(),
        metric,
        bucket,
        n,
    }
}

/// What one node adds for `runs` attempts of `job` ending in minute `minute`, run times 1..=runs ms.
fn node_rows(minute: i64, pool: &str, job: &str, runs: u64) -> Vec<StatRow> {
    let mut rows = vec![
        row(minute, pool, job, Metric::Submitted, 0, runs),
        row(minute, pool, job, Metric::Succeeded, 0, runs - 1),
        row(minute, pool, job, Metric::Dead, 0, 1),
    ];
    for ms in 1..=runs {
        rows.push(row(minute, pool, job, Metric::RunMs, bucket_of(ms), 1));
        rows.push(row(minute, pool, job, Metric::WaitMs, bucket_of(10), 1));
    }
    rows
}

fn query(from: i64, to: i64, step_ms: i64) -> StatsQuery {
    StatsQuery {
        from,
        to,
        step_ms,
        pool: None,
        job: None,
    }
}

/// Two nodes add to the same minutes (one after the other, then at once): the counts and the
/// histograms sum, percentiles come from the merged buckets, filters and hour points sum the
/// right rows, and it all survives a reopen.
pub async fn stats_of_two_nodes_merge<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let mut harness = fresh().await;
    let store = harness.store();
    // Node a: run times 1..=50 ms; node b: 51..=100 ms (as the rows of 50 more runs).
    store
        .add_stats(node_rows(T0, "node", "a.js", 50))
        .await
        .unwrap();
    let b: Vec<StatRow> = {
        let mut rows = vec![
            row(T0, "node", "a.js", Metric::Submitted, 0, 50),
            row(T0, "node", "a.js", Metric::Succeeded, 0, 49),
            row(T0, "node", "a.js", Metric::Dead, 0, 1),
        ];
        for ms in 51..=100 {
            rows.push(row(T0, "node", "a.js", Metric::RunMs, bucket_of(ms), 1));
            rows.push(row(T0, "node", "a.js", Metric::WaitMs, bucket_of(10), 1));
        }
        rows
    };
    let (x, y) = (Arc::clone(&store), Arc::clone(&store));
    let (b1, b2) = (b.clone(), b);
    store.add_stats(b1).await.unwrap();
    // Once more from two "nodes" at once: the adds merge whatever their order.
    let (r1, r2) = tokio::join!(
        x.add_stats(b2),
        y.add_stats(vec![row(
            T0 + MINUTE_MS,
            "python",
            "b.py",
            Metric::Submitted,
            0,
            7
        )])
    );
    r1.unwrap();
    r2.unwrap();

    check_merged(&*store).await;
    drop((store, x, y));
    let store = harness.reopen().await;
    check_merged(&*store).await;
}

async fn check_merged(store: &dyn Store) {
    let q = query(T0, T0 + 2 * MINUTE_MS, MINUTE_MS);
    let points = series(&q, &store.stats(&q).await.unwrap());
    assert_eq!(points.len(), 2);
    let p = &points[0];
    assert_eq!(p.t, T0);
    assert_eq!(p.submitted, 150);
    assert_eq!(p.succeeded, 147);
    assert_eq!(p.dead, 3);
    assert_eq!(p.ended, 150);
    // Run times: 1..=50 once, 51..=100 twice.
    let p50 = p.run_p50_ms.unwrap();
    assert!((p50 - 63.0).abs() / 63.0 <= PRECISION, "p50 {p50}");
    let p95 = p.run_p95_ms.unwrap();
    assert!((p95 - 97.0).abs() / 97.0 <= PRECISION, "p95 {p95}");
    let w = p.wait_p95_ms.unwrap();
    assert!((w - 10.0).abs() / 10.0 <= PRECISION, "wait {w}");
    assert_eq!(points[1].submitted, 7);
    assert_eq!(points[1].run_p50_ms, None);

    // Filters.
    let mut q = query(T0, T0 + 2 * MINUTE_MS, MINUTE_MS);
    q.pool = Some("python".into());
    let points = series(&q, &store.stats(&q).await.unwrap());
    assert_eq!((points[0].submitted, points[1].submitted), (0, 7));
    let mut q = query(T0, T0 + 2 * MINUTE_MS, MINUTE_MS);
    q.job = Some("a.js".into());
    let points = series(&q, &store.stats(&q).await.unwrap());
    assert_eq!((points[0].submitted, points[1].submitted), (150, 0));

    // An hour point sums its minutes.
    let q = query(T0, T0 + HOUR_MS, HOUR_MS);
    let points = series(&q, &store.stats(&q).await.unwrap());
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].submitted, 157);
    assert_eq!(points[0].ended, 150);
}

/// `purge_stats` deletes the minutes before its time and keeps the others.
pub async fn stats_purge_deletes_old_minutes<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    store
        .add_stats(vec![
            row(T0, "p", "j", Metric::Submitted, 0, 1),
            row(T0 + MINUTE_MS, "p", "j", Metric::Submitted, 0, 2),
            row(T0 + MINUTE_MS, "p", "j", Metric::RunMs, 3, 2),
        ])
        .await
        .unwrap();
    assert_eq!(store.purge_stats(T0 + MINUTE_MS).await.unwrap(), 1);
    assert_eq!(store.purge_stats(T0 + MINUTE_MS).await.unwrap(), 0);
    let q = query(T0, T0 + 2 * MINUTE_MS, MINUTE_MS);
    let points = series(&q, &store.stats(&q).await.unwrap());
    assert_eq!((points[0].submitted, points[1].submitted), (0, 2));
    assert_eq!(points[1].ended, 2);
}

/// Reads and adds out of bounds are refused naming the limit, and change nothing.
pub async fn stats_are_bounded<H: Harness, Fut: Future<Output = H>>(fresh: impl FnOnce() -> Fut) {
    let harness = fresh().await;
    let store: Arc<dyn Store> = harness.store();
    let limit = |e: StoreError| match e {
        StoreError::Limit(l) => l.field,
        other => panic!("expected a limit, got {other:?}"),
    };
    let e = store
        .stats(&query(T0, T0 + 2 * 24 * HOUR_MS, MINUTE_MS))
        .await
        .unwrap_err();
    assert_eq!(limit(e), "points");
    let e = store
        .stats(&query(T0, T0 + 32 * 24 * HOUR_MS, HOUR_MS))
        .await
        .unwrap_err();
    assert_eq!(limit(e), "window");
    let e = store
        .stats(&query(T0, T0 + HOUR_MS, 1_000))
        .await
        .unwrap_err();
    assert_eq!(limit(e), "step");
    let e = store
        .add_stats(vec![
            row(T0, "p", "j", Metric::Submitted, 0, 1),
            row(T0, "p", "j", Metric::RunMs, BUCKETS, 1),
        ])
        .await
        .unwrap_err();
    assert_eq!(limit(e), "bucket");
    let too_many = (0..=MAX_ADD_ROWS)
        .map(|i| row(T0, "p", "j", Metric::Submitted, 0, i as u64))
        .collect();
    assert_eq!(
        limit(store.add_stats(too_many).await.unwrap_err()),
        "stat rows"
    );
    let q = query(T0, T0 + MINUTE_MS, MINUTE_MS);
    assert!(
        store.stats(&q).await.unwrap().is_empty(),
        "a refused add left rows"
    );
}
