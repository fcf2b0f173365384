//! What only a shared database has: several `PgStore`s (nodes) on one database at once.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use offload_store::{CronTick, JobState, Store, StoreError, Transition};
use offload_store_pg::testing::TestDb;
use offload_store_pg::{Notice, PgStore, SCHEMA_VERSION};
use serde_json::json;
use tokio::sync::broadcast;

/// Waits for the first notice that `pick` accepts.
async fn expect_notice<T>(
    rx: &mut broadcast::Receiver<Notice>,
    mut pick: impl FnMut(&Notice) -> Option<T>,
) -> T {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let n = rx.recv().await.expect("notices");
            if let Some(t) = pick(&n) {
                return t;
            }
        }
    })
    .await
    .expect("no such notice within 5 s")
}

#[tokio::test]
async fn nodes_starting_together_migrate_once() {
    let db = TestDb::create();
    let url = db.url.clone();
    let stores = futures_join(
        (0..4)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { PgStore::connect(&url).await })
            })
            .collect(),
    )
    .await;
    for s in &stores {
        assert!(s.is_ok(), "{s:?}");
    }
    assert_eq!(
        db.query_i64("SELECT count(*)::bigint, max(version)::bigint FROM offload_schema"),
        // One row per version: each migration ran once.
        vec![i64::from(SCHEMA_VERSION), i64::from(SCHEMA_VERSION)]
    );
    drop(stores);

    // A database from a newer offload is refused, and left alone.
    db.query_i64("WITH v AS (INSERT INTO offload_schema (version) VALUES (99) RETURNING version) SELECT version::bigint FROM v");
    match PgStore::connect(&db.url).await {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (99, SCHEMA_VERSION))
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_node_hears_the_others_but_not_itself() {
    let db = TestDb::create();
    let a = PgStore::connect(&db.url).await.unwrap();
    let b = PgStore::connect(&db.url).await.unwrap();
    let mut hear_a = a.notifications();
    let mut hear_b = b.notifications();
    // A submit on A wakes B for that pool.
    let s = a.submit(vec![job("x", "images")], WINDOW).await.unwrap();
    let pool = expect_notice(&mut hear_b, |n| match n {
        Notice::Due { pool } => Some(pool.clone()),
        _ => None,
    })
    .await;
    assert_eq!(pool, "images");

    // B runs it; A hears the end.
    let c = b
        .claim("node-b", &demand("images", 1), LEASE)
        .await
        .unwrap();
    let mut done = completion(c[0].id, 1, succeeded(json!(7)));
    done.node = "node-b".into();
    b.complete(vec![done]).await.unwrap();
    let j = expect_notice(&mut hear_a, |n| match n {
        Notice::Job(j) => Some(j.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        (j.id, j.state, j.attempt, j.pool.as_str(), j.job.as_str()),
        (s[0].id, JobState::Succeeded, 1, "images", "x")
    );

    // A cancel asked on A reaches B, which holds the job.
    let s = a.submit(vec![job("y", "images")], WINDOW).await.unwrap();
    b.claim("node-b", &demand("images", 1), LEASE)
        .await
        .unwrap();
    assert_eq!(
        a.cancel(s[0].id).await.unwrap(),
        offload_store::CancelResult::Requested
    );
    let (id, node) = expect_notice(&mut hear_b, |n| match n {
        Notice::CancelRequested { id, node } => Some((*id, node.clone())),
        _ => None,
    })
    .await;
    assert_eq!((id, node.as_deref()), (s[0].id, Some("node-b")));

    // A retry that is due at once wakes the others too.
    let s = a.submit(vec![job("z", "py")], WINDOW).await.unwrap();
    let c = a.claim("node-a", &demand("py", 1), LEASE).await.unwrap();
    let mut failed = completion(
        c[0].id,
        1,
        Transition::Retry {
            error: error("boom"),
            run_at: 0,
        },
    );
    failed.node = "node-a".into();
    a.complete(vec![failed]).await.unwrap();
    expect_notice(&mut hear_b, |n| {
        matches!(n, Notice::Due { pool } if pool == "py").then_some(())
    })
    .await;
    assert_eq!(b.get(s[0].id).await.unwrap().state, JobState::Failed);

    // A hears nothing of its own.
    while let Ok(n) = hear_a.try_recv() {
        assert!(
            !matches!(&n, Notice::Due { pool } if pool == "py"),
            "A heard its own notice: {n:?}"
        );
    }
    drop((a, b));
}

/// A dependent released by a completion on one node is announced to the others for its own
/// pool (before, they found it only at their next poll); submitting it `waiting` announced
/// nothing.
#[tokio::test]
async fn a_released_dependent_wakes_the_other_nodes_for_its_pool() {
    use offload_store::After;
    let db = TestDb::create();
    let a = PgStore::connect(&db.url).await.unwrap();
    let b = PgStore::connect(&db.url).await.unwrap();
    let mut hear_b = b.notifications();
    let head = a.submit(vec![job("head", "first")], WINDOW).await.unwrap()[0].id;
    let mut later = job("later", "second");
    later.after = vec![After::Job(head)];
    let dep = a.submit(vec![later], WINDOW).await.unwrap()[0].id;
    let c = a.claim("node-a", &demand("first", 1), LEASE).await.unwrap();
    assert_eq!(c[0].id, head);
    let mut done = completion(head, 1, succeeded(json!(1)));
    done.node = "node-a".into();
    a.complete(vec![done]).await.unwrap();
    // B hears "first" (the submit) and then "second", which only the release can have sent.
    expect_notice(&mut hear_b, |n| {
        matches!(n, Notice::Due { pool } if pool == "second").then_some(())
    })
    .await;
    assert_eq!(b.get(dep).await.unwrap().state, JobState::Queued);
    drop((a, b));
}

#[tokio::test]
async fn a_dead_nodes_jobs_are_reclaimed_by_another_after_the_lease() {
    let db = TestDb::create();
    let a = PgStore::connect(&db.url).await.unwrap();
    let b = PgStore::connect(&db.url).await.unwrap();
    let s = a
        .submit((0..3).map(|_| job("x", "node")).collect(), WINDOW)
        .await
        .unwrap();
    let lease = Duration::from_millis(1_000);
    let taken = a.claim("node-a", &demand("node", 3), lease).await.unwrap();
    assert_eq!(taken.len(), 3);
    // A "dies": it stops renewing. Within the lease, B takes nothing.
    assert_eq!(b.recover(None).await.unwrap(), 0);
    assert!(b
        .claim("node-b", &demand("node", 3), lease)
        .await
        .unwrap()
        .is_empty());
    // A renews one of them: that one stays A's.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(a
        .renew("node-a", &[taken[0].id], Duration::from_secs(30))
        .await
        .unwrap()
        .is_empty());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(b.recover(None).await.unwrap(), 2);
    let again = b.claim("node-b", &demand("node", 3), lease).await.unwrap();
    assert_eq!(again.len(), 2);
    assert!(
        again.iter().all(|c| c.attempt == 2),
        "the lost attempt counts"
    );
    let r = b.get(again[0].id).await.unwrap();
    assert_eq!(r.node.as_deref(), Some("node-b"));
    assert_eq!(r.attempts.len(), 2);
    assert_eq!(r.attempts[0].outcome.as_deref(), Some("lease_expired"));
    assert_eq!(r.attempts[0].node.as_deref(), Some("node-a"));
    // A comes back late: its completions are ignored and its renewals report the loss.
    let lost = a
        .renew(
            "node-a",
            &taken.iter().map(|c| c.id).collect::<Vec<_>>(),
            lease,
        )
        .await
        .unwrap();
    assert_eq!(
        lost.iter().collect::<HashSet<_>>(),
        again.iter().map(|c| &c.id).collect::<HashSet<_>>()
    );
    let mut late = completion(again[0].id, 1, succeeded(json!("late")));
    late.node = "node-a".into();
    a.complete(vec![late]).await.unwrap();
    assert_eq!(b.get(again[0].id).await.unwrap().state, JobState::Running);
    let _ = s;
    check_counts(&db, &b).await;
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cron_ticks_and_idempotency_keys_hold_across_racing_nodes() {
    let db = TestDb::create();
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(Arc::new(PgStore::connect(&db.url).await.unwrap()));
    }
    // Every node fires the same 20 ticks and submits the same 20 keys, at the same time.
    let mut tasks = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        for round in 0..4 {
            let store = Arc::clone(store);
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for t in 0..20 {
                    let mut tick = job("nightly", "node");
                    tick.cron = Some(CronTick {
                        schedule: "nightly".into(),
                        tick: t,
                    });
                    let mut keyed = job("pay", "node");
                    keyed.idempotency_key = Some(format!("k{t}"));
                    // Alternate the order so batches lock in different orders too.
                    let batch = if (i + round) % 2 == 0 {
                        vec![tick, keyed]
                    } else {
                        vec![keyed, tick]
                    };
                    let s = store.submit(batch, WINDOW).await.unwrap();
                    ids.extend(s.into_iter().map(|s| s.id));
                }
                ids
            }));
        }
    }
    let mut ids = HashSet::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    assert_eq!(ids.len(), 40, "one job per tick and per key");
    assert_eq!(db.query_i64("SELECT count(*) FROM offload_jobs"), vec![40]);
    assert_eq!(
        stores[2].last_tick("nightly").await.unwrap(),
        Some(19),
        "the last tick is the highest"
    );
    check_counts(&db, &stores[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claimers_on_several_nodes_never_share_a_job() {
    let db = TestDb::create();
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(Arc::new(PgStore::connect(&db.url).await.unwrap()));
    }
    for _ in 0..10 {
        stores[0]
            .submit((0..100).map(|_| job("x", "node")).collect(), WINDOW)
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for t in 0..24 {
        let store = Arc::clone(&stores[t % 3]);
        tasks.push(tokio::spawn(async move {
            let node = format!("node-{}", t % 3);
            let mut mine = Vec::new();
            loop {
                let c = store
                    .claim(&node, &demand("node", 1 + t % 5), LEASE)
                    .await
                    .unwrap();
                if c.is_empty() {
                    return mine;
                }
                // Complete half of them right away, as a node would.
                let done: Vec<_> = c
                    .iter()
                    .filter(|c| c.id.as_u128() % 2 == 0)
                    .map(|c| {
                        let mut d = completion(c.id, 1, succeeded(json!(null)));
                        d.node = node.clone();
                        d
                    })
                    .collect();
                store.complete(done).await.unwrap();
                mine.extend(c.into_iter().map(|c| c.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 1_000, "every job claimed once");
    assert_eq!(distinct.len(), 1_000, "no job claimed twice");
    check_counts(&db, &stores[1]).await;
}

/// Rate and concurrency limits are one limit for every node: three nodes claiming at once take
/// exactly the bucket's tokens, and never run more jobs of a limited name than its
/// `max_running` (counted between a claim and its completion, while the store has the job
/// `running`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_hold_across_nodes() {
    use std::sync::atomic::{AtomicU64, Ordering};

    use offload_store::Queue;

    let db = TestDb::create();
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(Arc::new(PgStore::connect(&db.url).await.unwrap()));
    }
    stores[0]
        .set_limits(vec![
            throttle(Queue::pool("node"), Some((40, 3_600_000)), None),
            throttle(Queue::job("k"), None, Some(3)),
        ])
        .await
        .unwrap();
    let mut batch: Vec<_> = (0..200).map(|_| job("x", "node")).collect();
    batch.extend((0..60).map(|_| job("k", "python")));
    stores[1].submit(batch, WINDOW).await.unwrap();
    let running = Arc::new(AtomicU64::new(0));
    let most = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..12 {
        let store = Arc::clone(&stores[t % 3]);
        let (running, most) = (Arc::clone(&running), Arc::clone(&most));
        tasks.push(tokio::spawn(async move {
            let node = format!("node-{}", t % 3);
            let want = [demand("node", 1 + t % 4), demand("python", 1 + t % 2)].concat();
            let mut mine = Vec::new();
            let mut idle = 0;
            // Until no node has anything left to claim: a claim that finds nothing while
            // other nodes still run `k` jobs tries again after they complete theirs.
            while idle < 50 {
                let c = store.claim(&node, &want, LEASE).await.unwrap();
                if c.is_empty() {
                    idle += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                idle = 0;
                let ks = c.iter().filter(|c| c.job == "k").count() as u64;
                let now = running.fetch_add(ks, Ordering::SeqCst) + ks;
                most.fetch_max(now, Ordering::SeqCst);
                let done = c
                    .iter()
                    .map(|c| {
                        let mut d = completion(c.id, 1, succeeded(json!(null)));
                        d.node = node.clone();
                        d
                    })
                    .collect();
                running.fetch_sub(ks, Ordering::SeqCst);
                store.complete(done).await.unwrap();
                mine.extend(c);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().map(|c| c.id).collect();
    assert_eq!(distinct.len(), all.len(), "no job claimed twice");
    assert_eq!(all.iter().filter(|c| c.pool == "node").count(), 40);
    assert!(
        most.load(Ordering::SeqCst) <= 3,
        "k ran {} at once",
        most.load(Ordering::SeqCst)
    );
    assert_eq!(all.iter().filter(|c| c.job == "k").count(), 60);
    check_counts(&db, &stores[2]).await;
}

/// Concurrent submits of one `unique = "while-active"` job on three nodes make one job.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unique_submits_racing_on_several_nodes_make_one_job() {
    let db = TestDb::create();
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(Arc::new(PgStore::connect(&db.url).await.unwrap()));
    }
    let mut tasks = Vec::new();
    for t in 0..24 {
        let store = Arc::clone(&stores[t % 3]);
        tasks.push(tokio::spawn(async move {
            let mut j = job("once", "node");
            j.params = json!({"report": "daily", "day": 3});
            j.unique = true;
            store.submit(vec![j], WINDOW).await.unwrap()[0].clone()
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.unwrap());
    }
    let ids: HashSet<_> = all.iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), 1, "{all:?}");
    assert_eq!(all.iter().filter(|s| !s.duplicate).count(), 1);
    check_counts(&db, &stores[0]).await;
}

/// Dependencies across nodes: many dependents, each after two jobs that two nodes complete at
/// the same moment, while a third node submits more dependents of the same jobs. Every
/// dependent ends `queued` exactly once (none stuck `waiting`, none released twice), and the
/// counts match the rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dependencies_completed_on_two_nodes_at_once_release_their_dependents() {
    use offload_store::After;
    let db = TestDb::create();
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(Arc::new(PgStore::connect(&db.url).await.unwrap()));
    }
    for round in 0..8 {
        let mut batch = vec![job("a", "node"), job("b", "node")];
        for k in 0..6 {
            let mut d = job(&format!("d{k}"), "node");
            d.after = vec![After::Item(0), After::Item(1)];
            batch.push(d);
        }
        let s = stores[0].submit(batch, WINDOW).await.unwrap();
        let (a, b) = (s[0].id, s[1].id);
        let claimed = stores[0]
            .claim(NODE, &demand("node", 10), LEASE)
            .await
            .unwrap();
        assert_eq!(
            claimed.len(),
            2,
            "round {round}: only a and b are claimable"
        );
        let (sa, sb, sc) = (
            Arc::clone(&stores[0]),
            Arc::clone(&stores[1]),
            Arc::clone(&stores[2]),
        );
        let ta = tokio::spawn(async move {
            sa.complete(vec![completion(a, 1, succeeded(json!(1)))])
                .await
        });
        let tb = tokio::spawn(async move {
            sb.complete(vec![completion(b, 1, succeeded(json!(2)))])
                .await
        });
        let tc = tokio::spawn(async move {
            let mut late = job("late", "node");
            late.after = vec![After::Job(b), After::Job(a)];
            sc.submit(vec![late], WINDOW).await
        });
        ta.await.unwrap().unwrap();
        tb.await.unwrap().unwrap();
        let late = tc.await.unwrap().unwrap()[0].id;
        let mut ids: Vec<_> = s[2..].iter().map(|d| d.id).collect();
        ids.push(late);
        for id in &ids {
            let j = stores[1].get(*id).await.unwrap();
            assert_eq!(
                (j.state, j.waiting_on),
                (JobState::Queued, 0),
                "round {round}"
            );
        }
        let claimed: HashSet<_> = stores[2]
            .claim(NODE, &demand("node", 100), LEASE)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(claimed, ids.iter().copied().collect(), "round {round}");
        let done = ids
            .iter()
            .map(|id| completion(*id, 1, succeeded(json!(0))))
            .collect();
        stores[0].complete(done).await.unwrap();
    }
    check_counts(&db, &stores[0]).await;
}
