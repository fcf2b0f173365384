//! Schema compatibility: a database written by each released schema version opens with the
//! current code, keeps its data and works on.
//!
//! `tests/data/v{N}.db` is written once, by `generate_fixture` (ignored; run it when a schema
//! version is released: `cargo test -p offload-store --test compat -- --ignored`), and then
//! never changes. It refuses to overwrite an existing fixture.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use offload_store::sqlite::{DB_FILE, SCHEMA_VERSION};
use offload_store::stats::{bucket_of, series, Metric, StatRow, StatsQuery, MINUTE_MS};
use offload_store::{
    After, Backoff, CronSchedule, CronTick, Curve, JobId, JobState, ListFilter, LogLine, LogQuery,
    LogStream, Queue, SqliteStore, Store, StoredError, Transition,
};
use serde_json::json;

const FIXTURE_NODE: &str = "fixture-node";
const FAR_FUTURE: i64 = 4_102_444_800_000; // 2100-01-01
const TICK: i64 = 1_700_000_000_000;

fn fixture(version: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(format!("v{version}.db"))
}

#[tokio::test]
#[ignore = "writes tests/data/v{SCHEMA_VERSION}.db; run once per released schema version"]
async fn generate_fixture() {
    let target = fixture(SCHEMA_VERSION);
    assert!(
        !target.exists(),
        "{} exists: a released fixture never changes",
        target.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let one = |name: &str| {
        let mut j = job(name, "node");
        j.params = json!({ "name": name, "list": [1, 2.5, "three", null] });
        j
    };
    let claim_one = || async {
        let c = store
            .claim(FIXTURE_NODE, &demand("node", 1), LEASE)
            .await
            .unwrap();
        assert_eq!(c.len(), 1);
        c[0].id
    };
    let end = |id, then| {
        let mut c = completion(id, 1, then);
        c.node = FIXTURE_NODE.into();
        c
    };

    let id = store
        .submit(vec![one("succeeded.js")], WINDOW)
        .await
        .unwrap()[0]
        .id;
    assert_eq!(claim_one().await, id);
    store.progress(vec![(id, json!(100))]).await.unwrap();
    store
        .complete(vec![end(id, succeeded(json!({ "ok": true })))])
        .await
        .unwrap();

    let id = store
        .submit(vec![one("retrying.js")], WINDOW)
        .await
        .unwrap()[0]
        .id;
    assert_eq!(claim_one().await, id);
    let retry = Transition::Retry {
        error: error("first try failed"),
        run_at: FAR_FUTURE,
    };
    store.complete(vec![end(id, retry)]).await.unwrap();

    let id = store.submit(vec![one("dead.js")], WINDOW).await.unwrap()[0].id;
    assert_eq!(claim_one().await, id);
    let dead = Transition::Dead {
        error: error("gave up"),
    };
    store.complete(vec![end(id, dead)]).await.unwrap();

    let running = store.submit(vec![one("running.js")], WINDOW).await.unwrap()[0].id;
    assert_eq!(claim_one().await, running);

    let id = store
        .submit(vec![one("cancelled.js")], WINDOW)
        .await
        .unwrap()[0]
        .id;
    store.cancel(id).await.unwrap();

    // Since v10: a job retried by hand, its attempts numbered on (1, then 2), each with its
    // log; dead again.
    let mut once = one("retried.js");
    once.max_attempts = 1;
    let id = store.submit(vec![once], WINDOW).await.unwrap()[0].id;
    for attempt in 1..=2 {
        assert_eq!(claim_one().await, id);
        store
            .append_logs(vec![log_line(id, attempt)])
            .await
            .unwrap();
        let dead = Transition::Dead {
            error: error("again"),
        };
        let mut c = completion(id, attempt, dead);
        c.node = FIXTURE_NODE.into();
        store.complete(vec![c]).await.unwrap();
        if attempt == 1 {
            store.retry(id).await.unwrap();
        }
    }

    let mut queued = one("queued.js");
    queued.priority = 3;
    queued.idempotency_key = Some("fixture-key".into());
    let mut scheduled = one("scheduled.js");
    scheduled.run_at = Some(FAR_FUTURE);
    let mut cron = one("cron.js");
    cron.cron = Some(CronTick {
        schedule: "nightly".into(),
        tick: TICK,
    });
    store
        .submit(vec![queued, scheduled, cron], WINDOW)
        .await
        .unwrap();
    store
        .put_schedule(CronSchedule {
            name: "nightly".into(),
            cron: "0 3 * * *".into(),
            job: "cron.js".into(),
            params: json!({ "full": true }),
            missed: "run_once".into(),
            created_at: TICK - 1,
            overlap: "queue".into(),
            pause_after_failures: Some(3),
            timezone: Some("Europe/Berlin".into()),
            // Since v9.
            jitter_ms: Some(30_000),
            failure_backoff_ms: Some(60_000),
            failure_backoff_max_ms: Some(600_000),
        })
        .await
        .unwrap();
    // Since v2: counters and a pause.
    store
        .pause_schedule("nightly", TICK + 1, "manual")
        .await
        .unwrap();
    // Since v3: paused queues.
    store
        .pause_queue(&Queue::pool("node"), TICK + 2)
        .await
        .unwrap();
    store
        .pause_queue(&Queue::job("report.js"), TICK + 3)
        .await
        .unwrap();
    // Since v4: a job with its own backoff and result retention.
    let mut chosen = one("chosen.js");
    chosen.backoff = Some(Backoff {
        curve: Curve::List(vec![1000, 5000]),
        max_delay_ms: 4000,
        jitter: true,
    });
    chosen.keep_result_ms = Some(60_000);
    chosen.run_at = Some(FAR_FUTURE);
    store.submit(vec![chosen], WINDOW).await.unwrap();
    // Since v5: a minute of history.
    store
        .add_stats(vec![
            stat(Metric::Submitted, 0, 3),
            stat(Metric::Succeeded, 0, 2),
            stat(Metric::RunMs, bucket_of(40), 2),
        ])
        .await
        .unwrap();
    // Since v9: a job waiting for the running one.
    let mut waiting = one("waiting.js");
    waiting.after = vec![After::Job(running)];
    let w = store.submit(vec![waiting], WINDOW).await.unwrap();
    assert_eq!(w[0].state, JobState::Waiting);
    // Since v11: a second link, waiting for the waiting one.
    let mut chained = one("chained.js");
    chained.after = vec![After::Job(w[0].id)];
    let c = store.submit(vec![chained], WINDOW).await.unwrap();
    assert_eq!(c[0].state, JobState::Waiting);
    drop(store); // closes: the WAL is checkpointed into the file
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(dir.path().join(DB_FILE), &target).unwrap();
}

/// The one line of attempt `attempt` of job `id`.
fn log_line(id: JobId, attempt: u32) -> LogLine {
    LogLine {
        job_id: id,
        attempt,
        seq: 0,
        stream: LogStream::Stdout,
        at: TICK,
        line: format!("attempt {attempt}"),
        shared: false,
        marker: false,
    }
}

/// A count of the history's minute `TICK` for `chosen.js` on `node`.
fn stat(metric: Metric, bucket: u16, n: u64) -> StatRow {
    StatRow {
        minute: TICK / MINUTE_MS * MINUTE_MS,
        pool: "node".into(),
        job: "chosen.js".into(),
        metric,
        bucket,
        n,
    }
}

/// Opens a copy of the fixture of `version` (the original stays untouched).
fn open_fixture(version: u32) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture(version), dir.path().join(DB_FILE))
        .unwrap_or_else(|e| panic!("fixture v{version}: {e}"));
    let store = SqliteStore::open(dir.path()).unwrap();
    (dir, store)
}

#[tokio::test]
async fn opens_a_v1_database() {
    let (dir, store) = open_fixture(1);
    let page = store
        .list(ListFilter {
            limit: 1_000,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    let by_name = |name: &str| {
        page.jobs
            .iter()
            .find(|j| j.job == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .clone()
    };
    assert_eq!(page.jobs.len(), 8);
    let states: Vec<_> = page
        .jobs
        .iter()
        .map(|j| (j.job.as_str(), j.state))
        .collect();
    assert_eq!(
        states,
        [
            ("cron.js", JobState::Queued),
            ("scheduled.js", JobState::Scheduled),
            ("queued.js", JobState::Queued),
            ("cancelled.js", JobState::Cancelled),
            ("running.js", JobState::Running),
            ("dead.js", JobState::Dead),
            ("retrying.js", JobState::Failed),
            ("succeeded.js", JobState::Succeeded),
        ],
        "newest first"
    );

    let ok = store.get(by_name("succeeded.js").id).await.unwrap();
    assert_eq!(ok.result, Some(json!({ "ok": true })));
    assert_eq!(ok.progress, Some(json!(100)));
    assert_eq!(
        ok.params,
        json!({ "name": "succeeded.js", "list": [1, 2.5, "three", null] })
    );
    assert_eq!(ok.attempts.len(), 1);
    assert_eq!(ok.attempts[0].outcome.as_deref(), Some("succeeded"));
    assert_eq!(ok.attempts[0].pid, Some(4242));
    assert_eq!(ok.attempts[0].node.as_deref(), Some(FIXTURE_NODE));

    let failed = store.get(by_name("retrying.js").id).await.unwrap();
    assert_eq!(failed.run_at, FAR_FUTURE);
    assert_eq!(
        failed.error,
        Some(StoredError {
            name: "Error".into(),
            message: "first try failed".into(),
            stack: Some("at job.js:1".into()),
            retry: true,
        })
    );
    let dead = store.get(by_name("dead.js").id).await.unwrap();
    assert_eq!(dead.error.unwrap().message, "gave up");
    let queued = by_name("queued.js");
    assert_eq!(
        (queued.priority, queued.idempotency_key.as_deref()),
        (3, Some("fixture-key"))
    );

    // Schedules, ticks and idempotency keys still work; v2 gave the schedule the default
    // policies and counters from the jobs kept.
    let schedules = store.schedules().await.unwrap();
    assert_eq!(schedules.len(), 1);
    assert_eq!(schedules[0].cron, "0 3 * * *");
    assert_eq!(
        (
            schedules[0].overlap.as_str(),
            schedules[0].pause_after_failures,
            schedules[0].timezone.as_deref()
        ),
        ("skip", None, None)
    );
    let states = store.cron_states().await.unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(
        (
            states[0].schedule.as_str(),
            states[0].runs,
            states[0].active
        ),
        ("nightly", 1, true)
    );
    assert_eq!(store.last_tick("nightly").await.unwrap(), Some(TICK));
    let mut dup = job("cron.js", "node");
    dup.cron = Some(CronTick {
        schedule: "nightly".into(),
        tick: TICK,
    });
    let mut keyed = job("queued.js", "node");
    keyed.idempotency_key = Some("fixture-key".into());
    // A key answers the same job with the same params only.
    keyed.params = json!({ "name": "queued.js", "list": [1, 2.5, "three", null] });
    let s = store.submit(vec![dup, keyed], Duration::MAX).await.unwrap();
    assert_eq!((s[0].id, s[0].duplicate), (by_name("cron.js").id, true));
    assert_eq!((s[1].id, s[1].duplicate), (queued.id, true));

    let counts = store.counts().await.unwrap();
    assert_eq!(counts.values().sum::<u64>(), 8);
    assert_eq!(counts.get(&("node".into(), JobState::Queued)), Some(&2));

    // The interrupted job comes back, and the old database takes new work.
    assert_eq!(store.recover(Some(FIXTURE_NODE)).await.unwrap(), 1);
    let claimed = store.claim(NODE, &demand("node", 10), LEASE).await.unwrap();
    let names: Vec<_> = claimed.iter().map(|c| c.job.as_str()).collect();
    assert_eq!(names, ["queued.js", "running.js", "cron.js"]);
    let running = claimed.iter().find(|c| c.job == "running.js").unwrap();
    assert_eq!(running.attempt, 2);
    store
        .complete(
            claimed
                .iter()
                .map(|c| completion(c.id, c.attempt, succeeded(json!(1))))
                .collect(),
        )
        .await
        .unwrap();
    let fresh = store
        .submit(vec![job("new.js", "node")], WINDOW)
        .await
        .unwrap();
    assert!(store.get(fresh[0].id).await.is_ok());
    check_counts(dir.path(), &store).await;
}

#[tokio::test]
async fn opens_a_v2_database() {
    let (_dir, store) = open_fixture(2);
    let schedules = store.schedules().await.unwrap();
    assert_eq!(
        (
            schedules[0].overlap.as_str(),
            schedules[0].pause_after_failures,
            schedules[0].timezone.as_deref()
        ),
        ("queue", Some(3), Some("Europe/Berlin"))
    );
    let states = store.cron_states().await.unwrap();
    assert_eq!(
        (
            states[0].runs,
            states[0].paused_at,
            states[0].paused_reason.as_deref()
        ),
        (1, Some(TICK + 1), Some("manual"))
    );
    store.resume_schedule("nightly").await.unwrap();
    assert_eq!(store.cron_states().await.unwrap()[0].paused_at, None);
}

#[tokio::test]
async fn opens_a_v3_database() {
    let (_dir, store) = open_fixture(3);
    let paused = store.paused_queues().await.unwrap();
    let got: Vec<_> = paused.iter().map(|p| (&p.queue, p.paused_at)).collect();
    assert_eq!(
        got,
        [
            (&Queue::pool("node"), TICK + 2),
            (&Queue::job("report.js"), TICK + 3)
        ]
    );
    assert!(store.resume_queue(&Queue::pool("node")).await.unwrap());
}

#[test]
fn there_is_a_fixture_for_every_schema_version() {
    for v in 1..=SCHEMA_VERSION {
        assert!(
            fixture(v).exists(),
            "no fixture for schema v{v}: run generate_fixture (see tests/compat.rs)"
        );
    }
}

#[tokio::test]
async fn opens_a_v4_database() {
    let (_dir, store) = open_fixture(4);
    let page = store
        .list(ListFilter {
            job: Some("chosen.js".into()),
            limit: 10,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    let chosen = &page.jobs[0];
    assert_eq!(
        chosen.backoff,
        Backoff {
            curve: Curve::List(vec![1000, 5000]),
            max_delay_ms: 4000,
            jitter: true,
        }
    );
    assert_eq!(chosen.keep_result_ms, Some(60_000));
}

#[tokio::test]
async fn opens_a_v8_database() {
    let (_dir, store) = open_fixture(8);
    let minute = TICK / MINUTE_MS * MINUTE_MS;
    let q = StatsQuery {
        from: minute,
        to: minute + MINUTE_MS,
        step_ms: MINUTE_MS,
        pool: Some("node".into()),
        job: None,
    };
    let points = series(&q, &store.stats(&q).await.unwrap());
    assert_eq!((points[0].submitted, points[0].succeeded), (3, 2));
    assert_eq!(points[0].ended, 2);
    // The history works on: an add sums into the stored row.
    store
        .add_stats(vec![stat(Metric::Submitted, 0, 1)])
        .await
        .unwrap();
    let points = series(&q, &store.stats(&q).await.unwrap());
    assert_eq!(points[0].submitted, 4);
}

#[tokio::test]
async fn opens_a_v9_database() {
    let (_dir, store) = open_fixture(9);
    let find = |name: &'static str| {
        let store = &store;
        async move {
            store
                .list(ListFilter {
                    job: Some(name.into()),
                    limit: 1,
                    ..ListFilter::default()
                })
                .await
                .unwrap()
                .jobs
                .remove(0)
        }
    };
    let running = find("running.js").await;
    let waiting = find("waiting.js").await;
    assert_eq!(waiting.state, JobState::Waiting);
    assert_eq!(
        (waiting.after.clone(), waiting.waiting_on),
        (vec![running.id], 1)
    );
    let s = &store.schedules().await.unwrap()[0];
    assert_eq!(
        (s.jitter_ms, s.failure_backoff_ms, s.failure_backoff_max_ms),
        (Some(30_000), Some(60_000), Some(600_000))
    );
    // Its dependency's end still releases it: its node is gone (recovered), it runs again.
    assert!(store.resume_queue(&Queue::pool("node")).await.unwrap());
    store.recover(Some(FIXTURE_NODE)).await.unwrap();
    let claimed = store.claim(NODE, &demand("node", 10), LEASE).await.unwrap();
    let run = claimed.iter().find(|c| c.id == running.id).unwrap();
    store
        .complete(vec![completion(run.id, run.attempt, succeeded(json!(1)))])
        .await
        .unwrap();
    assert_eq!(store.get(waiting.id).await.unwrap().state, JobState::Queued);
}

#[tokio::test]
async fn a_v8_database_gains_dependencies() {
    let (_dir, store) = open_fixture(8);
    let page = store
        .list(ListFilter {
            limit: 100,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert!(page
        .jobs
        .iter()
        .all(|j| j.after.is_empty() && j.waiting_on == 0));
    let s = &store.schedules().await.unwrap()[0];
    assert_eq!(
        (s.jitter_ms, s.failure_backoff_ms, s.failure_backoff_max_ms),
        (None, None, None)
    );
    // A job of the old file can be waited for.
    let dep = page
        .jobs
        .iter()
        .find(|j| j.job == "scheduled.js")
        .unwrap()
        .id;
    let mut j = job("after.js", "node");
    j.after = vec![After::Job(dep)];
    let s = store.submit(vec![j], WINDOW).await.unwrap();
    assert_eq!(s[0].state, JobState::Waiting);
    store.cancel(dep).await.unwrap();
    assert_eq!(store.get(s[0].id).await.unwrap().state, JobState::Cancelled);
}

/// The job of `name` in `store` (the first listed).
async fn find(store: &SqliteStore, name: &str) -> offload_store::JobRecord {
    let id = store
        .list(ListFilter {
            job: Some(name.into()),
            limit: 1,
            ..ListFilter::default()
        })
        .await
        .unwrap()
        .jobs[0]
        .id;
    store.get(id).await.unwrap()
}

/// Every line of job `id`, as (attempt, text).
async fn all_logs(store: &SqliteStore, id: JobId) -> Vec<(u32, String)> {
    let q = LogQuery {
        attempt: None,
        after: None,
        limit: 100,
    };
    let lines = store.logs(id, q).await.unwrap();
    lines.into_iter().map(|l| (l.attempt, l.line)).collect()
}

#[tokio::test]
async fn opens_a_v10_database() {
    let (_dir, store) = open_fixture(10);
    let r = find(&store, "retried.js").await;
    assert_eq!((r.state, r.attempt, r.max_attempts), (JobState::Dead, 2, 2));
    let numbers: Vec<u32> = r.attempts.iter().map(|a| a.attempt).collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(
        all_logs(&store, r.id).await,
        [(1, "attempt 1".into()), (2, "attempt 2".into())]
    );
    // Retried again: attempt 3, one more attempt, the old logs stay.
    store.retry(r.id).await.unwrap();
    assert!(store.resume_queue(&Queue::pool("node")).await.unwrap());
    store.recover(Some(FIXTURE_NODE)).await.unwrap();
    let claimed = store.claim(NODE, &demand("node", 20), LEASE).await.unwrap();
    let c = claimed.iter().find(|c| c.id == r.id).unwrap();
    assert_eq!((c.attempt, c.max_attempts), (3, 3));
    assert_eq!(all_logs(&store, r.id).await.len(), 2);
}

/// A job retried on an older file numbers its attempts on from the count the file holds.
#[tokio::test]
async fn a_v9_database_numbers_retried_attempts_on() {
    let (_dir, store) = open_fixture(9);
    let dead = find(&store, "dead.js").await;
    assert_eq!(
        (dead.state, dead.attempt, dead.max_attempts),
        (JobState::Dead, 1, 3)
    );
    store.retry(dead.id).await.unwrap();
    assert!(store.resume_queue(&Queue::pool("node")).await.unwrap());
    let claimed = store.claim(NODE, &demand("node", 20), LEASE).await.unwrap();
    let c = claimed.iter().find(|c| c.id == dead.id).unwrap();
    assert_eq!((c.attempt, c.max_attempts), (2, 4));
}

/// The chain of a v11 file (`running.js` ← `waiting.js` ← `chained.js`): its head dead
/// cancels both links, each naming the job it waited for.
#[tokio::test]
async fn opens_a_v11_database() {
    let (_dir, store) = open_fixture(11);
    let running = find(&store, "running.js").await;
    let (waiting, chained) = (
        find(&store, "waiting.js").await,
        find(&store, "chained.js").await,
    );
    assert_eq!(
        (waiting.state, chained.state),
        (JobState::Waiting, JobState::Waiting)
    );
    let mut c = completion(
        running.id,
        running.attempt,
        Transition::Dead {
            error: error("gone"),
        },
    );
    c.node = FIXTURE_NODE.into();
    store.complete(vec![c]).await.unwrap();
    for (link, dep) in [("waiting.js", running.id), ("chained.js", waiting.id)] {
        let v = find(&store, link).await;
        assert_eq!(v.state, JobState::Cancelled, "{link}");
        let e = v.error.expect("a cancelled dependent says why");
        assert!(
            e.message.contains(&dep.to_string()),
            "{link}: {}",
            e.message
        );
    }
}

/// A file from before v12 loses the trigger that counted a schedule's runs (`cron_run`): the
/// submit counts them now, once per new tick and not for a duplicate one.
#[tokio::test]
async fn a_v11_database_counts_cron_runs_without_its_trigger() {
    let (_dir, store) = open_fixture(11);
    let runs = || async {
        let states = store.cron_states().await.unwrap();
        let nightly = states.iter().find(|s| s.schedule == "nightly").unwrap();
        nightly.runs
    };
    assert_eq!(runs().await, 1);
    let tick = |t: i64| {
        let mut j = job("cron.js", "node");
        j.cron = Some(CronTick {
            schedule: "nightly".into(),
            tick: t,
        });
        j
    };
    let s = store
        .submit(vec![tick(TICK + 86_400_000)], WINDOW)
        .await
        .unwrap();
    assert!(!s[0].duplicate);
    assert_eq!(runs().await, 2);
    let again = store
        .submit(vec![tick(TICK + 86_400_000)], WINDOW)
        .await
        .unwrap();
    assert_eq!((again[0].id, again[0].duplicate), (s[0].id, true));
    assert_eq!(runs().await, 2, "a duplicate tick is not a run");
}

/// A file from before v11 gains the cascade without trigger nesting: a chain longer than
/// SQLite's trigger depth (1,000) is cancelled whole when its head dies.
#[tokio::test]
async fn a_v10_database_cancels_a_chain_past_the_trigger_depth() {
    const LINKS: usize = 1_500;
    let (_dir, store) = open_fixture(10);
    let head = store
        .submit(vec![job("head", "chain")], WINDOW)
        .await
        .unwrap()[0]
        .id;
    let links: Vec<_> = (0..LINKS)
        .map(|k| {
            let mut j = job("link", "chain");
            j.after = vec![if k == 0 {
                After::Job(head)
            } else {
                After::Item(k - 1)
            }];
            j
        })
        .collect();
    let ids: Vec<JobId> = store
        .submit(links, WINDOW)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    let claimed = store.claim(NODE, &demand("chain", 5), LEASE).await.unwrap();
    assert_eq!(claimed.iter().map(|c| c.id).collect::<Vec<_>>(), [head]);
    let dead = Transition::Dead {
        error: error("boom"),
    };
    store
        .complete(vec![completion(head, 1, dead)])
        .await
        .unwrap();
    for id in [ids[0], ids[LINKS / 2], ids[LINKS - 1]] {
        assert_eq!(store.get(id).await.unwrap().state, JobState::Cancelled);
    }
    let page = store
        .list(ListFilter {
            state: Some(JobState::Waiting),
            job: Some("link".into()),
            limit: 10,
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert!(page.jobs.is_empty(), "no link is left waiting");
}
