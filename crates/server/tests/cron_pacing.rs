//! The daemon cron's jitter and failure backoff end to end: a schedule with `jitter_ms` gives
//! each run a due time up to that much after its tick (the runs wait `scheduled`); one with
//! `failure_backoff_ms` fires nothing after a failed run until the wait is over (the skipped
//! ticks counted in `offload_cron_backoff_ticks_total`), whatever ticks come; bad values are
//! refused naming their field. Waits are on states and counters, not on time.

mod common;

use common::http::schedule;
use common::http::{get, post};
use common::{cron_daemon as start, Running};
use serde_json::{json, Value};

/// The runs of schedule `name`, polled until there are at least `n` (a hang guard of a minute).
async fn runs(d: &Running, name: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, page) = get(d, &format!("/v1/jobs?schedule={name}&limit=100")).await;
        let jobs = page["jobs"].as_array().cloned().unwrap_or_default();
        if jobs.len() >= n {
            return jobs;
        }
        assert!(std::time::Instant::now() < deadline, "{name}: {page}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn jitter_delays_each_run_within_its_bound() {
    let d = start().await;
    let jitter = 3_600_000i64;
    let (s, v) = post(
        &d,
        "/v1/cron",
        json!({"name": "spread", "cron": "* * * * * *", "job": "hello", "overlap": "queue",
               "jitter_ms": jitter}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(schedule(&d, "spread").await["jitter_ms"], jitter);
    let jobs = runs(&d, "spread", 3).await;
    let mut offsets = Vec::new();
    for j in &jobs {
        let (created, run_at) = (
            j["created_at"].as_i64().unwrap(),
            j["run_at"].as_i64().unwrap(),
        );
        // Due between its tick (at most a second before it was created) and tick + jitter.
        assert!(
            run_at >= created - 1000 && run_at <= created + jitter,
            "{j}"
        );
        offsets.push(run_at - created);
    }
    // Drawn per tick: three runs of one schedule are not all due at once (each offset is one
    // of 3.6 million).
    offsets.sort_unstable();
    offsets.dedup();
    assert!(offsets.len() > 1, "{offsets:?}");
    assert!(
        jobs.iter().any(|j| j["state"] == "scheduled"),
        "a jittered run waits: {jobs:?}"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_failure_backoff_skips_ticks_until_the_wait_is_over() {
    let d = start().await;
    let (s, v) = post(
        &d,
        "/v1/cron",
        json!({"name": "flaky", "cron": "* * * * * *", "job": "fails",
               "failure_backoff_ms": 3_600_000}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    // The first run ends dead; from then on every tick falls within the hour's wait.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let s = schedule(&d, "flaky").await;
        if s["counters"]["consecutive_failures"] == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{s}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let before = d.metric("offload_cron_backoff_ticks_total").await;
    d.metric_until("offload_cron_backoff_ticks_total", |n| n >= before + 2.0)
        .await;
    let s = schedule(&d, "flaky").await;
    assert_eq!(s["counters"]["runs"], 1, "no run during the wait: {s}");
    assert_eq!(s["failure_backoff_ms"], 3_600_000);
    assert!(s["paused"].is_null(), "waiting is not a pause: {s}");
    d.stop().await;
}

#[tokio::test]
async fn bad_pacing_is_refused_naming_its_field() {
    let d = start().await;
    for (extra, field) in [
        (json!({"jitter_ms": 3_600_001}), "jitter"),
        (json!({"failure_backoff_ms": 0}), "failure_backoff"),
        (json!({"failure_backoff_ms": 86_400_001}), "failure_backoff"),
        (
            json!({"failure_backoff_ms": 10_000, "failure_backoff_max_ms": 5_000}),
            "failure_backoff",
        ),
        (
            json!({"failure_backoff_max_ms": 5_000}),
            "failure_backoff_max_ms",
        ),
    ] {
        let mut body = json!({"name": "bad", "cron": "0 3 * * *", "job": "hello"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (s, v) = post(&d, "/v1/cron", body.clone()).await;
        assert_eq!(s, 400, "{body} → {v}");
        assert!(v.to_string().contains(field), "{field}: {v}");
    }
    let (_, list) = get(&d, "/v1/cron").await;
    assert_eq!(list["schedules"], json!([]), "nothing created: {list}");
    d.stop().await;
}
