//! `unique = "while-active"` end to end: a second submit of an unfinished unique job answers
//! `200` with the first job and `duplicate: true`; once it ends, a submit makes a new job. Per
//! submit (`"unique": "while-active"`) and per job name (`[job."<name>"] unique`). Jobs are
//! kept unfinished by a paused job name, not by time.

mod common;

use common::http::{client, post, wait_result};
use common::{config, examples, Running};
use serde_json::{json, Value};

const TOML: &str = r#"
[job."hello"]
unique = "while-active"
"#;

async fn submit(d: &Running, body: Value) -> (u16, Value) {
    let r = client()
        .post(format!("{}/v1/jobs", d.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn a_unique_submit_returns_the_unfinished_job_until_it_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&examples(), &tmp.path().join("data"), TOML);
    let d = Running::start(tmp, cfg).await;
    for job in ["primes", "hello"] {
        let (s, v) = post(&d, &format!("/v1/queues/{job}/pause"), json!({})).await;
        assert_eq!(s, 200, "{v}");
    }
    // Per submit.
    let body = json!({"job": "primes", "params": {"limit": 10}, "unique": "while-active"});
    let (s, first) = submit(&d, body.clone()).await;
    assert_eq!((s, &first["duplicate"]), (201, &json!(false)), "{first}");
    let (s, again) = submit(&d, body.clone()).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["state"], "queued");
    // Other params, or no `unique`: new jobs.
    let (s, _) = submit(
        &d,
        json!({"job": "primes", "params": {"limit": 11}, "unique": "while-active"}),
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = submit(&d, json!({"job": "primes", "params": {"limit": 10}})).await;
    assert_eq!(s, 201);
    // Per job name, from the configuration.
    let (s, h1) = submit(&d, json!({"job": "hello", "params": {"name": "a"}})).await;
    assert_eq!(s, 201, "{h1}");
    let (s, h2) = submit(&d, json!({"job": "hello", "params": {"name": "a"}})).await;
    assert_eq!((s, &h2["id"]), (200, &h1["id"]), "{h2}");

    // Once it ends, a new job.
    let (s, v) = post(&d, "/v1/queues/primes/resume", json!({})).await;
    assert_eq!(s, 200, "{v}");
    let id = first["id"].as_str().unwrap();
    assert_eq!(wait_result(&d, id).await["state"], "succeeded");
    let (s, next) = submit(&d, body).await;
    assert_eq!(s, 201, "{next}");
    assert_ne!(next["id"], first["id"]);
    // A bad value is refused.
    let (s, v) = submit(&d, json!({"job": "primes", "unique": "forever"})).await;
    assert_eq!(s, 400, "{v}");
}
