//! Queue semantics end to end (issue 15) over HTTP, real Node workers, real SQLite: retry
//! backoffs chosen per submit, per job name and per pool, and non-retryable errors. No test
//! waits for a delay: the backoffs that run are 0 ms, the others are only read back.

mod common;

use std::path::Path;

use common::http::{get, post, submit, wait_result};
use common::{config, Running};
use serde_json::{json, Value};

/// A daemon on a jobs folder of its own (`final` fails with `retry: false`, `flaky` always
/// fails, retryably) with `toml` as its offload.toml.
async fn start(toml: &str) -> Running {
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    write(
        &jobs,
        "final.js",
        "module.exports = (p, ctx) => ctx.fail(new TypeError('no such user'), { retry: false });",
    );
    write(
        &jobs,
        "flaky.js",
        "module.exports = () => { throw new Error('try again'); };",
    );
    let cfg = config(&jobs, &tmp.path().join("data"), toml);
    Running::start(tmp, cfg).await
}

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).unwrap();
}

async fn job(d: &Running, id: &str) -> Value {
    get(d, &format!("/v1/jobs/{id}")).await.1
}

#[tokio::test]
async fn a_non_retryable_error_goes_dead_with_attempts_left() {
    let d = start("").await;
    let id = submit(&d, json!({"job": "final", "max_attempts": 5})).await;
    let r = wait_result(&d, &id).await;
    assert_eq!(r["state"], "dead", "{r}");
    let j = job(&d, &id).await;
    assert_eq!(
        (j["attempt"].as_u64(), j["max_attempts"].as_u64()),
        (Some(1), Some(5))
    );
    assert_eq!(j["error"]["name"], "TypeError", "{j}");
    assert_eq!(j["error"]["retry"], false, "{j}");
    let attempts = j["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{j}");
    assert_eq!(attempts[0]["outcome"], "failed");
    assert_eq!(attempts[0]["error"]["retry"], false);
    // A retryable failure says so too.
    let id = submit(&d, json!({"job": "flaky", "max_attempts": 1})).await;
    let r = wait_result(&d, &id).await;
    assert_eq!(
        (r["state"].as_str(), &r["error"]["retry"]),
        (Some("dead"), &json!(true))
    );
}

#[tokio::test]
async fn backoffs_come_from_the_submit_then_the_job_name_then_the_pool() {
    let d = start(
        r#"
        [[pool]]
        name = "node"
        jobs = ["**"]
        backoff = { kind = "linear", delay_ms = 0, jitter = true }

        [job."final"]
        backoff = { kind = "fixed", delay_ms = 2500, max_delay_ms = 2000 }
        "#,
    )
    .await;
    // Asked: three attempts, 0 ms apart.
    let id = submit(
        &d,
        json!({"job": "flaky", "max_attempts": 3,
               "backoff": {"kind": "list", "delays_ms": [0]}}),
    )
    .await;
    let r = wait_result(&d, &id).await;
    assert_eq!(r["state"], "dead", "{r}");
    let j = job(&d, &id).await;
    assert_eq!(j["attempts"].as_array().unwrap().len(), 3, "{j}");
    assert_eq!(
        j["backoff"],
        json!({"kind": "list", "delays_ms": [0], "max_delay_ms": 3_600_000, "jitter": false})
    );
    assert_eq!(j["backoff_ms"], 0);
    // The pool's.
    let id = submit(&d, json!({"job": "flaky", "max_attempts": 2})).await;
    let r = wait_result(&d, &id).await;
    assert_eq!(r["state"], "dead", "{r}");
    let j = job(&d, &id).await;
    assert_eq!(j["attempts"].as_array().unwrap().len(), 2, "{j}");
    assert_eq!(
        j["backoff"],
        json!({"kind": "linear", "delay_ms": 0, "max_delay_ms": 3_600_000, "jitter": true})
    );
    // The job name's, over the pool's (only read back: it is never waited for).
    let id = submit(&d, json!({"job": "final"})).await;
    let j = job(&d, &id).await;
    assert_eq!(
        j["backoff"],
        json!({"kind": "fixed", "delay_ms": 2500, "max_delay_ms": 2000, "jitter": false})
    );
    assert_eq!(j["backoff_ms"], 2500);
}

#[tokio::test]
async fn jobs_without_a_backoff_keep_the_old_exponential_one() {
    let d = start("[[pool]]\nname = \"node\"\njobs = [\"**\"]\nbackoff_ms = 250").await;
    let id = submit(&d, json!({"job": "final"})).await;
    let j = job(&d, &id).await;
    assert_eq!(
        j["backoff"],
        json!({"kind": "exponential", "delay_ms": 250, "max_delay_ms": 3_600_000, "jitter": false})
    );
}

#[tokio::test]
async fn bad_backoffs_are_400_naming_the_field_and_create_nothing() {
    let d = start("").await;
    let bad = [
        (
            json!({"kind": "list", "delays_ms": []}),
            "backoff.delays_ms",
        ),
        (
            json!({"kind": "list", "delays_ms": vec![1; 33]}),
            "backoff.delays_ms",
        ),
        (
            json!({"kind": "list", "delays_ms": [1, 3_600_001]}),
            "backoff.delays_ms",
        ),
        (
            json!({"kind": "exponential", "delay_ms": 3_600_001}),
            "backoff.delay_ms",
        ),
        (
            json!({"kind": "fixed", "delay_ms": 1, "max_delay_ms": 3_600_001}),
            "backoff.max_delay_ms",
        ),
    ];
    for (backoff, field) in bad {
        let (s, v) = post(&d, "/v1/jobs", json!({"job": "flaky", "backoff": backoff})).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{v}"
        );
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{field}: {message}");
        let batch = json!({"jobs": [{"job": "flaky"}, {"job": "flaky", "backoff": backoff}]});
        let (s, v) = post(&d, "/v1/jobs/batch", batch).await;
        assert_eq!(s, 400, "{v}");
    }
    for shape in [
        json!({"kind": "fixed"}),
        json!({"kind": "sometimes", "delay_ms": 1}),
        json!({"kind": "fixed", "delay_ms": -1}),
        json!({"kind": "fixed", "delay_ms": 1, "extra": true}),
    ] {
        let (s, v) = post(&d, "/v1/jobs", json!({"job": "flaky", "backoff": shape})).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("invalid_json")),
            "{v}"
        );
    }
    let (_, page) = get(&d, "/v1/jobs").await;
    assert_eq!(page["jobs"], json!([]), "{page}");
}

#[tokio::test]
async fn keep_result_ms_comes_from_the_submit_then_the_job_name_and_is_bounded() {
    let d = start("[job.\"flaky\"]\nkeep_result_ms = 60000").await;
    let asked = submit(&d, json!({"job": "flaky", "keep_result_ms": 5})).await;
    assert_eq!(job(&d, &asked).await["keep_result_ms"], 5);
    let named = submit(&d, json!({"job": "flaky"})).await;
    assert_eq!(job(&d, &named).await["keep_result_ms"], 60000);
    let plain = submit(&d, json!({"job": "final"})).await;
    assert_eq!(job(&d, &plain).await["keep_result_ms"], Value::Null);
    let (s, v) = post(
        &d,
        "/v1/jobs",
        json!({"job": "final", "keep_result_ms": 315_360_000_001_u64}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("keep_result_ms"),
        "{v}"
    );
}

#[tokio::test]
async fn key_ttl_ms_is_bounded_and_a_window_within_it_finds_the_first_job() {
    let d = start("[job.\"final\"]\nkey_ttl_ms = 3600000").await;
    let body = json!({"job": "final", "idempotency_key": "k1", "key_ttl_ms": 3_600_000});
    let first = submit(&d, body.clone()).await;
    let (s, v) = post(&d, "/v1/jobs", body).await;
    assert_eq!(
        (s, v["id"].as_str(), &v["duplicate"]),
        (200, Some(first.as_str()), &json!(true))
    );
    for bad in [json!(0), json!(31_536_000_001_u64)] {
        let (s, v) = post(
            &d,
            "/v1/jobs",
            json!({"job": "final", "idempotency_key": "k2", "key_ttl_ms": bad}),
        )
        .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{v}"
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("key_ttl_ms"),
            "{v}"
        );
    }
}
