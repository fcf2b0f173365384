//! History end to end: jobs run through the daemon, then `GET /v1/stats` shows them with the
//! right counts, and run-time and queue-wait percentiles within the histograms' precision of
//! the attempts' own times (the engine records both from the same clock readings). The
//! daemon adds its counts every `flush_ms`; the test polls the answer until the counts are
//! in (a state, not a duration). Also: the bounds of a query, as typed 400s naming the limit.

mod common;

use std::time::{Duration, Instant};

use common::http::{get, submit, wait_result};
use common::{config, examples, sqlite, Running};
use offload_store::stats::PRECISION;
use serde_json::{json, Value};

const TOML: &str = "[history]\nflush_ms = 100\n";

/// The `p`-quantile of `values` as the histograms rank it (the `ceil(p·n)`-th smallest).
fn quantile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn close(got: &Value, want: f64, what: &str) {
    let got = got.as_f64().unwrap_or_else(|| panic!("{what}: {got}"));
    if want < 1.0 {
        assert!(got <= 1.1, "{what}: {got} for {want}");
    } else {
        assert!(
            (got - want).abs() / want <= PRECISION,
            "{what}: {got} for {want}"
        );
    }
}

/// Sums a count over the points.
fn total(s: &Value, key: &str) -> u64 {
    s["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[key].as_u64().unwrap())
        .sum()
}

/// Polls `path` until `done` holds for its answer (a hang guard of a minute).
async fn stats_until(d: &Running, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, s) = get(d, path).await;
        assert_eq!(status, 200, "{s}");
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "the history never got there: {s}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn stats_count_the_jobs_that_ran_with_their_percentiles() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&examples(), &tmp.path().join("data"), TOML);
    let store = sqlite(&cfg);
    let d = Running::start_with(cfg, store).await.keep(tmp);

    let mut ids = Vec::new();
    for steps in [1, 2, 3, 4, 5] {
        ids.push(submit(&d, json!({"job": "hello", "params": {"steps": steps}})).await);
    }
    let dead = submit(
        &d,
        json!({"job": "fails", "max_attempts": 2, "backoff": {"kind": "list", "delays_ms": [0]}}),
    )
    .await;
    let mut runs = Vec::new();
    let mut waits = Vec::new();
    for id in &ids {
        assert_eq!(wait_result(&d, id).await["state"], "succeeded");
        let (_, job) = get(&d, &format!("/v1/jobs/{id}")).await;
        let a = &job["attempts"][0];
        let started = a["started_at"].as_f64().unwrap();
        runs.push(a["ended_at"].as_f64().unwrap() - started);
        waits.push(started - job["run_at"].as_f64().unwrap());
    }
    assert_eq!(wait_result(&d, &dead).await["state"], "dead");

    // Every hello job, in one hour point (or two, across an hour's end).
    let hello = "/v1/stats?job=hello&step=hour";
    let s = stats_until(&d, hello, |s| total(s, "succeeded") == 5).await;
    assert_eq!(total(&s, "submitted"), 5, "{s}");
    assert_eq!(total(&s, "ended"), 5, "{s}");
    assert_eq!(total(&s, "failed") + total(&s, "dead"), 0, "{s}");
    assert_eq!(s["step"], "hour");
    let busy: Vec<&Value> = s["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["ended"].as_u64() == Some(5))
        .collect();
    if let [p] = busy[..] {
        close(&p["run_p50_ms"], quantile(&runs, 0.5), "run p50");
        close(&p["run_p95_ms"], quantile(&runs, 0.95), "run p95");
        close(&p["wait_p50_ms"], quantile(&waits, 0.5), "wait p50");
        close(&p["wait_p95_ms"], quantile(&waits, 0.95), "wait p95");
    }

    // The failing job: one retried attempt, then dead; with no filter, everything.
    let s = stats_until(&d, "/v1/stats?job=fails", |s| total(s, "dead") == 1).await;
    assert_eq!(
        (
            total(&s, "submitted"),
            total(&s, "failed"),
            total(&s, "ended")
        ),
        (1, 1, 2),
        "{s}"
    );
    assert_eq!(
        s["points"].as_array().unwrap().len(),
        60,
        "an hour of minutes"
    );
    let s = stats_until(&d, "/v1/stats", |s| total(s, "ended") == 7).await;
    assert_eq!(total(&s, "submitted"), 6, "{s}");
    let s = stats_until(&d, "/v1/stats?pool=python", |s| total(s, "dead") == 1).await;
    assert_eq!(total(&s, "succeeded"), 0, "{s}");
    d.stop().await;
}

#[tokio::test]
async fn stats_queries_are_bounded_with_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&examples(), &tmp.path().join("data"), TOML);
    let store = sqlite(&cfg);
    let d = Running::start_with(cfg, store).await.keep(tmp);
    let day = 86_400_000i64;
    for (path, needle) in [
        (format!("/v1/stats?from=0&to={}", 2 * day), "points"),
        (
            format!("/v1/stats?step=hour&from=0&to={}", 32 * day),
            "window",
        ),
        ("/v1/stats?from=5000&to=5000".into(), "from"),
        ("/v1/stats?step=second".into(), "query string"),
        (format!("/v1/stats?pool={}", "p".repeat(1025)), "pool"),
    ] {
        let (status, v) = get(&d, &path).await;
        assert_eq!(status, 400, "{path}: {v}");
        assert_eq!(v["error"]["code"], "invalid_request", "{path}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{path}: {message}");
    }
    let (status, v) = get(&d, &format!("/v1/stats?from=0&to={}", 25 * 60_000)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["points"].as_array().unwrap().len(), 25);
    d.stop().await;
}
