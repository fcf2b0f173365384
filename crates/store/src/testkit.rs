//! The engine-independent conformance suite of [`Store`] (feature `testkit`): every engine runs
//! the same cases, each on a fresh empty store.
//!
//! An engine implements [`Harness`] (its store, plus what the suite needs to look under it) and
//! expands [`store_conformance!`](crate::store_conformance) with a factory of fresh harnesses in
//! an integration test:
//!
//! ```ignore
//! offload_store::store_conformance!(|| async { MyHarness::fresh().await });
//! ```
//!
//! Each case is also a `pub async fn` here, taking that factory. The helpers (`job`, `demand`,
//! ...) build the values the cases submit and complete, for engine-specific tests too.

mod bounds;

pub use bounds::*;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::{
    now_ms, CancelResult, Completion, CronSchedule, CronTick, Demand, JobId, JobState, ListFilter,
    NewJob, Store, StoreError, StoredError, Transition,
};

/// The node the cases claim and complete as.
pub const NODE: &str = "node-a";
/// The lease of the cases' claims.
pub const LEASE: Duration = Duration::from_secs(30);
/// The idempotency window of the cases' submits.
pub const WINDOW: Duration = Duration::from_secs(3600);

/// A fresh empty store of one engine, and what the suite needs from that engine besides
/// [`Store`]. Dropping it drops the store, then whatever holds its data (a temporary directory,
/// a scratch database). Its futures need not be `Send`: the cases await them in place.
#[async_trait::async_trait(?Send)]
pub trait Harness {
    /// The store under test (a handle shared with the case).
    fn store(&self) -> Arc<dyn Store>;

    /// Asserts that [`Store::counts`] matches a count of the stored rows.
    async fn check_counts(&self);

    /// Closes the store and opens it again on the same data; the case has dropped its handles.
    async fn reopen(&mut self) -> Arc<dyn Store>;
}

/// A job `name` for `pool`: params `{"n": 1}`, 3 attempts, a 1 s timeout, 100 ms backoff.
pub fn job(name: &str, pool: &str) -> NewJob {
    NewJob {
        job: name.into(),
        params: json!({ "n": 1 }),
        pool: pool.into(),
        priority: 0,
        run_at: None,
        timeout_ms: Some(1_000),
        max_attempts: 3,
        backoff_ms: 100,
        idempotency_key: None,
        cron: None,
    }
}

/// A demand of `n` jobs of `pool`.
pub fn demand(pool: &str, n: usize) -> Vec<Demand> {
    vec![Demand {
        pool: pool.into(),
        n,
    }]
}

/// A stored error with `message` and a stack.
pub fn error(message: &str) -> StoredError {
    StoredError {
        name: "Error".into(),
        message: message.into(),
        stack: Some("at job.js:1".into()),
    }
}

/// The completion of `attempt` of `id` on [`NODE`], with the outcome that fits `then`.
pub fn completion(id: JobId, attempt: u32, then: Transition) -> Completion {
    let outcome = match &then {
        Transition::Succeeded { .. } => "succeeded",
        Transition::Retry { .. } | Transition::Dead { .. } => "failed",
        Transition::Cancelled => "cancelled",
    };
    Completion {
        id,
        attempt,
        node: NODE.into(),
        pid: Some(4242),
        started_at: now_ms(),
        ended_at: now_ms(),
        outcome: outcome.into(),
        then,
    }
}

/// A success with `result`.
pub fn succeeded(result: Value) -> Transition {
    Transition::Succeeded { result }
}

/// Expands to one `#[tokio::test]` per case of the [conformance suite](crate::testkit), each
/// running on a fresh harness from `$fresh`: an expression of a type
/// `FnOnce() -> impl Future<Output = impl Harness>`, evaluated once per test. The calling crate
/// needs `tokio` (features `macros`, `rt-multi-thread`) among its dev-dependencies.
#[macro_export]
macro_rules! store_conformance {
    ($fresh:expr $(,)?) => {
        $crate::store_conformance!(@cases $fresh;
            submit_then_get,
            a_batch_is_answered_in_order_and_is_atomic,
            delayed_jobs_are_scheduled_until_due,
            idempotency_window,
            idempotency_keys_are_scoped_to_job_and_params,
            numbers_out_of_range_are_refused,
            a_cron_tick_fires_once,
            claim_order_and_per_pool_limits,
            claim_leases_the_job_and_records_the_attempt,
            completions_apply_their_transitions,
            stale_completions_are_ignored,
            renew_extends_leases_and_reports_lost_ones,
            progress_last_value_wins,
            an_expired_lease_is_recovered_and_claimable_again,
            cancel_in_every_state,
            retry_requeues_dead_and_cancelled_jobs_with_fresh_attempts,
            list_newest_first_with_filters_and_cursor,
            list_caps_the_limit,
            counts_follow_every_transition,
            purge_deletes_old_terminal_jobs_only,
            schedules_crud;
            concurrent_claimers_never_share_a_job,
            concurrent_single_submits_are_all_committed
        );
    };
    (@cases $fresh:expr; $($case:ident),+; $($multi:ident),+) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::testkit::$case($fresh).await;
            }
        )+
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $multi() {
                $crate::testkit::$multi($fresh).await;
            }
        )+
    };
}

/// A submitted job reads back with every field as submitted; an unknown id is `NotFound`.
pub async fn submit_then_get<H: Harness, Fut: Future<Output = H>>(fresh: impl FnOnce() -> Fut) {
    let harness = fresh().await;
    let store = harness.store();
    let before = now_ms();
    let mut j = job("a.js", "node");
    j.priority = 5;
    j.params = json!({ "x": [1, 2, { "y": null }] });
    let s = store.submit(vec![j.clone()], WINDOW).await.unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].state, JobState::Queued);
    assert!(!s[0].duplicate);
    assert_eq!(s[0].id.get_version_num(), 7);

    let r = store.get(s[0].id).await.unwrap();
    assert_eq!(r.id, s[0].id);
    assert_eq!(r.job, "a.js");
    assert_eq!(r.pool, "node");
    assert_eq!(r.params, j.params);
    assert_eq!(r.state, JobState::Queued);
    assert_eq!(r.priority, 5);
    assert!(r.created_at >= before && r.created_at <= now_ms());
    assert_eq!(r.run_at, r.created_at);
    assert_eq!(r.updated_at, r.created_at);
    assert_eq!(r.attempt, 0);
    assert_eq!(r.max_attempts, 3);
    assert_eq!(r.timeout_ms, Some(1_000));
    assert_eq!(r.backoff_ms, 100);
    assert_eq!(r.idempotency_key, None);
    assert_eq!(r.progress, None);
    assert_eq!(r.result, None);
    assert_eq!(r.error, None);
    assert!(!r.cancel_requested);
    assert_eq!(r.node, None);
    assert_eq!(r.lease_until, None);
    assert!(r.attempts.is_empty());

    let unknown = JobId::now_v7();
    assert!(matches!(
        store.get(unknown).await,
        Err(StoreError::NotFound)
    ));
}

/// A batch is answered in order with time-ordered ids, and a bad job fails the whole batch.
pub async fn a_batch_is_answered_in_order_and_is_atomic<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let jobs: Vec<_> = (0..10).map(|i| job(&format!("j{i}.js"), "node")).collect();
    let s = store.submit(jobs, WINDOW).await.unwrap();
    for (i, sub) in s.iter().enumerate() {
        assert_eq!(store.get(sub.id).await.unwrap().job, format!("j{i}.js"));
    }
    // Ids are time-ordered, in submit order.
    assert!(s.windows(2).all(|w| w[0].id < w[1].id));

    assert!(store.submit(vec![], WINDOW).await.unwrap().is_empty());

    let mut bad = job("bad.js", "node");
    bad.max_attempts = 0;
    let err = store
        .submit(vec![job("ok.js", "node"), bad], WINDOW)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Limit(ref e) if e.field == "max_attempts"),
        "{err}"
    );
    let page = store
        .list(ListFilter {
            job: Some("ok.js".into()),
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert!(page.jobs.is_empty(), "nothing of a failed batch is stored");
}

/// A job with a future `run_at` stays scheduled until due, then is claimable.
pub async fn delayed_jobs_are_scheduled_until_due<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let mut later = job("later.js", "node");
    later.run_at = Some(now_ms() + 300);
    let mut past = job("past.js", "node");
    past.run_at = Some(now_ms() - 1_000);
    let s = store.submit(vec![later, past], WINDOW).await.unwrap();
    assert_eq!(s[0].state, JobState::Scheduled);
    assert_eq!(s[1].state, JobState::Queued);

    let c = store.claim(NODE, &demand("node", 10), LEASE).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].id, s[1].id);
    assert_eq!(store.get(s[0].id).await.unwrap().state, JobState::Scheduled);

    tokio::time::sleep(Duration::from_millis(350)).await;
    let c = store.claim(NODE, &demand("node", 10), LEASE).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].id, s[0].id);
    let r = store.get(s[0].id).await.unwrap();
    assert_eq!(c[0].run_at, r.run_at, "run_at stays the due time");
    harness.check_counts().await;
}

/// An idempotency key answers duplicates within the window only.
pub async fn idempotency_window<H: Harness, Fut: Future<Output = H>>(fresh: impl FnOnce() -> Fut) {
    let harness = fresh().await;
    let store = harness.store();
    let keyed = |k: &str| {
        let mut j = job("pay.js", "node");
        j.idempotency_key = Some(k.into());
        j
    };
    let first = store.submit(vec![keyed("k1")], WINDOW).await.unwrap()[0].clone();
    assert!(!first.duplicate);
    let again = store.submit(vec![keyed("k1")], WINDOW).await.unwrap()[0].clone();
    assert!(again.duplicate);
    assert_eq!(again.id, first.id);
    assert_eq!(again.state, JobState::Queued);

    // The duplicate reports the first job's state now.
    store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    let again = store.submit(vec![keyed("k1")], WINDOW).await.unwrap()[0].clone();
    assert_eq!((again.id, again.state), (first.id, JobState::Running));
    assert_eq!(
        store
            .get(first.id)
            .await
            .unwrap()
            .idempotency_key
            .as_deref(),
        Some("k1")
    );

    // Within one batch.
    let s = store
        .submit(vec![keyed("k2"), keyed("k2"), keyed("k3")], WINDOW)
        .await
        .unwrap();
    assert!(!s[0].duplicate && s[1].duplicate && !s[2].duplicate);
    assert_eq!(s[0].id, s[1].id);
    assert_ne!(s[0].id, s[2].id);

    // Past the window: a new job, which the key now names.
    let short = Duration::from_millis(50);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let fresh = store.submit(vec![keyed("k1")], short).await.unwrap()[0].clone();
    assert!(!fresh.duplicate);
    assert_ne!(fresh.id, first.id);
    let again = store.submit(vec![keyed("k1")], short).await.unwrap()[0].clone();
    assert_eq!((again.id, again.duplicate), (fresh.id, true));

    // A zero window never deduplicates.
    let a = store
        .submit(vec![keyed("k4"), keyed("k4")], Duration::ZERO)
        .await
        .unwrap();
    assert_ne!(a[0].id, a[1].id);
    harness.check_counts().await;
}

/// A cron tick submits its job once, however often it is offered.
pub async fn a_cron_tick_fires_once<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let tick = |t| {
        let mut j = job("nightly.js", "node");
        j.cron = Some(CronTick {
            schedule: "nightly".into(),
            tick: t,
        });
        j
    };
    assert_eq!(store.last_tick("nightly").await.unwrap(), None);
    let first = store.submit(vec![tick(1_000)], WINDOW).await.unwrap()[0].clone();
    assert!(!first.duplicate);
    let dup = store.submit(vec![tick(1_000)], WINDOW).await.unwrap()[0].clone();
    assert_eq!(
        (dup.id, dup.duplicate, dup.state),
        (first.id, true, first.state)
    );
    assert_eq!(store.last_tick("nightly").await.unwrap(), Some(1_000));

    let s = store
        .submit(vec![tick(2_000), tick(2_000)], WINDOW)
        .await
        .unwrap();
    assert!(!s[0].duplicate && s[1].duplicate);
    assert_eq!(s[0].id, s[1].id);
    assert_eq!(store.last_tick("nightly").await.unwrap(), Some(2_000));

    // An older tick does not move the last tick back; another schedule is separate.
    store.submit(vec![tick(1_500)], WINDOW).await.unwrap();
    assert_eq!(store.last_tick("nightly").await.unwrap(), Some(2_000));
    assert_eq!(store.last_tick("hourly").await.unwrap(), None);

    // The last tick survives the purge of the jobs it created.
    for _ in 0..3 {
        let c = store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
        store
            .complete(vec![completion(c[0].id, 1, succeeded(json!(null)))])
            .await
            .unwrap();
    }
    assert_eq!(store.purge(now_ms() + 1).await.unwrap(), 3);
    assert_eq!(store.last_tick("nightly").await.unwrap(), Some(2_000));
    harness.check_counts().await;
}

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

/// Completions apply their transitions: succeeded, retry, dead, cancelled.
pub async fn completions_apply_their_transitions<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let s = store
        .submit(
            (0..4).map(|i| job(&format!("j{i}"), "node")).collect(),
            WINDOW,
        )
        .await
        .unwrap();
    let ids: Vec<_> = s.iter().map(|s| s.id).collect();
    store.claim(NODE, &demand("node", 4), LEASE).await.unwrap();
    let retry_at = now_ms() + 200;
    let mut ok = completion(ids[0], 1, succeeded(json!({ "answer": 42 })));
    ok.started_at = 1_000;
    ok.ended_at = 2_000;
    store
        .complete(vec![
            ok,
            completion(
                ids[1],
                1,
                Transition::Retry {
                    error: error("boom"),
                    run_at: retry_at,
                },
            ),
            completion(
                ids[2],
                1,
                Transition::Dead {
                    error: error("fatal"),
                },
            ),
            completion(ids[3], 1, Transition::Cancelled),
        ])
        .await
        .unwrap();

    let r = store.get(ids[0]).await.unwrap();
    assert_eq!(r.state, JobState::Succeeded);
    assert_eq!(r.result, Some(json!({ "answer": 42 })));
    assert_eq!((r.node, r.lease_until, r.error), (None, None, None));
    let a = &r.attempts[0];
    assert_eq!(
        (
            a.started_at,
            a.ended_at,
            a.outcome.as_deref(),
            a.pid,
            &a.error
        ),
        (1_000, Some(2_000), Some("succeeded"), Some(4242), &None)
    );

    let r = store.get(ids[1]).await.unwrap();
    assert_eq!(r.state, JobState::Failed);
    assert_eq!(r.run_at, retry_at);
    assert_eq!(r.error, Some(error("boom")));
    assert_eq!(r.attempts[0].error, Some(error("boom")));
    assert_eq!(r.attempts[0].outcome.as_deref(), Some("failed"));

    let r = store.get(ids[2]).await.unwrap();
    assert_eq!(r.state, JobState::Dead);
    assert_eq!(r.error, Some(error("fatal")));

    let r = store.get(ids[3]).await.unwrap();
    assert_eq!(r.state, JobState::Cancelled);
    assert_eq!(r.attempts[0].outcome.as_deref(), Some("cancelled"));

    // The failed job is retried when due, as attempt 2; then it succeeds and forgets the error.
    assert!(store
        .claim(NODE, &demand("node", 4), LEASE)
        .await
        .unwrap()
        .is_empty());
    tokio::time::sleep(Duration::from_millis(250)).await;
    let c = store.claim(NODE, &demand("node", 4), LEASE).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].id, c[0].attempt, c[0].run_at), (ids[1], 2, retry_at));
    store
        .complete(vec![completion(ids[1], 2, succeeded(json!("ok")))])
        .await
        .unwrap();
    let r = store.get(ids[1]).await.unwrap();
    assert_eq!(
        (r.state, r.attempt, r.error),
        (JobState::Succeeded, 2, None)
    );
    assert_eq!(r.attempts.len(), 2);
    assert_eq!(r.attempts[1].attempt, 2);
    harness.check_counts().await;
}

/// Completions of an unknown job or an old attempt change nothing.
pub async fn stale_completions_are_ignored<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let id = store
        .submit(vec![job("a.js", "node")], WINDOW)
        .await
        .unwrap()[0]
        .id;
    store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    let mut other_node = completion(id, 1, succeeded(json!(1)));
    other_node.node = "node-b".into();
    store
        .complete(vec![
            completion(id, 2, succeeded(json!(2))),
            other_node,
            completion(JobId::now_v7(), 1, succeeded(json!(3))),
        ])
        .await
        .unwrap();
    let r = store.get(id).await.unwrap();
    assert_eq!(r.state, JobState::Running);
    assert_eq!(r.attempts[0].ended_at, None);

    store
        .complete(vec![completion(id, 1, succeeded(json!("first")))])
        .await
        .unwrap();
    // A second answer for the same attempt changes nothing.
    store
        .complete(vec![completion(
            id,
            1,
            Transition::Dead {
                error: error("late"),
            },
        )])
        .await
        .unwrap();
    let r = store.get(id).await.unwrap();
    assert_eq!(
        (r.state, r.result),
        (JobState::Succeeded, Some(json!("first")))
    );
    assert_eq!(r.attempts.len(), 1);
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

/// Progress updates keep the last value.
pub async fn progress_last_value_wins<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let harness = fresh().await;
    let store = harness.store();
    let s = store
        .submit(vec![job("a", "node"), job("b", "node")], WINDOW)
        .await
        .unwrap();
    let (a, b) = (s[0].id, s[1].id);
    store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    store
        .progress(vec![
            (a, json!(10)),
            (a, json!({ "pct": 50 })),
            (b, json!(99)),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.get(a).await.unwrap().progress,
        Some(json!({ "pct": 50 }))
    );
    assert_eq!(
        store.get(b).await.unwrap().progress,
        None,
        "b is not running"
    );
    store.progress(vec![]).await.unwrap();
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

/// Retry requeues dead and cancelled jobs with fresh attempts, and refuses the others.
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
    assert_eq!(
        (r.state, r.attempt, r.error),
        (JobState::Queued, 0, Some(error("no")))
    );
    assert!(matches!(
        store.retry(id).await,
        Err(StoreError::Conflict(_))
    ));
    let c = store.claim(NODE, &demand("node", 1), LEASE).await.unwrap();
    assert_eq!((c[0].id, c[0].attempt, c[0].max_attempts), (id, 1, 1));
    store
        .complete(vec![completion(id, 1, succeeded(json!("second time")))])
        .await
        .unwrap();
    let r = store.get(id).await.unwrap();
    assert_eq!(r.state, JobState::Succeeded);
    // The earlier attempt is kept, in order.
    let a: Vec<_> = r
        .attempts
        .iter()
        .map(|a| (a.attempt, a.outcome.clone().unwrap()))
        .collect();
    assert_eq!(a, [(1, "failed".to_string()), (1, "succeeded".to_string())]);
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

/// Cron schedules are put, listed and deleted.
pub async fn schedules_crud<H: Harness, Fut: Future<Output = H>>(fresh: impl FnOnce() -> Fut) {
    let harness = fresh().await;
    let store = harness.store();
    let sched = |name: &str, cron: &str| CronSchedule {
        name: name.into(),
        cron: cron.into(),
        job: "report.py".into(),
        params: json!({ "full": true }),
        missed: "skip".into(),
        created_at: 1_000,
    };
    assert!(store.schedules().await.unwrap().is_empty());
    store.put_schedule(sched("b", "0 * * * *")).await.unwrap();
    store.put_schedule(sched("a", "*/5 * * * *")).await.unwrap();
    let mut replaced = sched("b", "30 2 * * *");
    replaced.missed = "run_once".into();
    store.put_schedule(replaced.clone()).await.unwrap();
    assert_eq!(
        store.schedules().await.unwrap(),
        vec![sched("a", "*/5 * * * *"), replaced]
    );
    store.delete_schedule("a").await.unwrap();
    assert!(matches!(
        store.delete_schedule("a").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.schedules().await.unwrap().len(), 1);
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

/// Concurrent single submits are all committed and survive a reopen (run it on a multi-thread runtime).
pub async fn concurrent_single_submits_are_all_committed<H: Harness, Fut: Future<Output = H>>(
    fresh: impl FnOnce() -> Fut,
) {
    let mut harness = fresh().await;
    let store = harness.store();
    let mut tasks = Vec::new();
    for t in 0..64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..20 {
                let s = store
                    .submit(vec![job(&format!("t{t}-{i}"), "node")], WINDOW)
                    .await
                    .unwrap();
                ids.push(s[0].id);
            }
            // A failing call in the same group commits does not hurt the others.
            assert!(store.retry(ids[0]).await.is_err());
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    drop(store);
    let store = harness.reopen().await;
    for id in &ids {
        store.get(*id).await.unwrap();
    }
    let total: u64 = store.counts().await.unwrap().values().sum();
    assert_eq!(total, 1_280);
}
