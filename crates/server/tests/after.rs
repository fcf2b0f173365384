//! Job dependencies (`after`) end to end, over HTTP with real job processes: a batch chain
//! `a → b → c` runs in order; a dependency that ends dead cancels its dependents in cascade
//! (naming it), except one with `after_policy: "always"`; a cancelled dependency cancels its
//! waiting dependent; bad `after` values are refused with 400 naming the field, the batch whole.
//! Jobs are held by a paused job name, not by time.

mod common;

use common::http::{get, post, submit, wait_result, wait_state};
use common::{config, examples, Running};
use serde_json::{json, Value};

async fn batch(d: &Running, jobs: Value) -> (u16, Value) {
    post(d, "/v1/jobs/batch", json!({ "jobs": jobs })).await
}

fn ids(v: &Value) -> Vec<String> {
    v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn job(d: &Running, id: &str) -> Value {
    let (s, v) = get(d, &format!("/v1/jobs/{id}")).await;
    assert_eq!(s, 200, "{v}");
    v
}

#[tokio::test]
async fn a_batch_chain_runs_in_order_and_a_failure_cancels_its_dependents() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&examples(), &tmp.path().join("data"), "");
    let d = Running::start(tmp, cfg).await;

    // a → b → c, one batch: b and c wait; they run in order once a is let run.
    let (s, v) = post(&d, "/v1/queues/hello/pause", json!({})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = batch(
        &d,
        json!([
            {"job": "hello", "params": {"name": "a", "steps": 1}},
            {"job": "primes", "params": {"limit": 10}, "after": ["#0"]},
            {"job": "primes", "params": {"limit": 20}, "after": ["#1"]},
        ]),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let chain = ids(&v);
    let states: Vec<&Value> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| &j["state"])
        .collect();
    assert_eq!(
        states,
        [&json!("queued"), &json!("waiting"), &json!("waiting")]
    );
    let b = job(&d, &chain[1]).await;
    assert_eq!(b["after"], json!([chain[0]]));
    assert_eq!(b["waiting_on"], 1);
    assert_eq!(b["after_policy"], "succeeded");
    let (s, v) = post(&d, "/v1/queues/hello/resume", json!({})).await;
    assert_eq!(s, 200, "{v}");
    let c = wait_result(&d, &chain[2]).await;
    assert_eq!(c["state"], "succeeded", "{c}");
    let (a, b) = (job(&d, &chain[0]).await, job(&d, &chain[1]).await);
    let ended = |j: &Value| j["attempts"][0]["ended_at"].as_i64().unwrap();
    let started = |j: &Value| j["attempts"][0]["started_at"].as_i64().unwrap();
    let c = job(&d, &chain[2]).await;
    assert!(started(&b) >= ended(&a), "b ran after a: {a} {b}");
    assert!(started(&c) >= ended(&b), "c ran after b: {b} {c}");

    // A dependency that ends dead: its dependents are cancelled in cascade, naming it; one with
    // `always` runs anyway.
    let (s, v) = batch(
        &d,
        json!([
            {"job": "fails", "max_attempts": 1},
            {"job": "primes", "params": {"limit": 5}, "after": ["#0"]},
            {"job": "primes", "params": {"limit": 6}, "after": ["#1"]},
            {"job": "primes", "params": {"limit": 7}, "after": ["#0"], "after_policy": "always"},
        ]),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let f = ids(&v);
    assert_eq!(wait_result(&d, &f[0]).await["state"], "dead");
    for (k, dep) in [(1, &f[0]), (2, &f[1])] {
        let j = wait_state(&d, &f[k], "cancelled").await;
        assert_eq!(j["error"]["name"], "DependencyFailed", "{j}");
        assert!(
            j["error"]["message"]
                .as_str()
                .unwrap()
                .contains(dep.as_str()),
            "{j}"
        );
    }
    assert_eq!(wait_result(&d, &f[3]).await["state"], "succeeded");

    // A cancelled dependency cancels its waiting dependent.
    let (s, v) = post(&d, "/v1/queues/hello/pause", json!({})).await;
    assert_eq!(s, 200, "{v}");
    let held = submit(&d, json!({"job": "hello"})).await;
    let (s, v) = post(
        &d,
        "/v1/jobs",
        json!({"job": "primes", "after": [held.clone()]}),
    )
    .await;
    assert_eq!((s, &v["state"]), (201, &json!("waiting")), "{v}");
    let dependent = v["id"].as_str().unwrap().to_owned();
    let (s, v) = post(&d, &format!("/v1/jobs/{held}/cancel"), json!({})).await;
    assert!(s == 200 || s == 202, "{s} {v}");
    assert_eq!(wait_result(&d, &dependent).await["state"], "cancelled");
    d.stop().await;
}

#[tokio::test]
async fn bad_after_values_are_refused_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&examples(), &tmp.path().join("data"), "");
    let d = Running::start(tmp, cfg).await;
    let unknown = "01900000-0000-7000-8000-000000000000";
    let cases = [
        json!({"job": "primes", "after": [unknown]}),
        json!({"job": "primes", "after": ["not-an-id"]}),
        json!({"job": "primes", "after": ["#0"]}),
        json!({"job": "primes", "after": vec![unknown; 65]}),
    ];
    for body in cases {
        let (s, v) = post(&d, "/v1/jobs", body.clone()).await;
        assert_eq!(s, 400, "{body} → {v}");
        let text = v.to_string();
        assert!(text.contains("after"), "the refusal names the field: {v}");
    }
    // A bad policy: refused by the body's parser, naming the values it takes.
    let (s, v) = post(
        &d,
        "/v1/jobs",
        json!({"job": "primes", "after_policy": "sometimes"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(v.to_string().contains("always"), "{v}");
    // A batch whose second item names a later one (or an unknown job) creates nothing.
    for jobs in [
        json!([{"job": "primes"}, {"job": "primes", "after": ["#2"]}, {"job": "primes"}]),
        json!([{"job": "primes"}, {"job": "primes", "after": [unknown]}]),
    ] {
        let (s, v) = batch(&d, jobs).await;
        assert_eq!(s, 400, "{v}");
        assert!(v.to_string().contains("after"), "{v}");
    }
    let (s, v) = get(&d, "/v1/jobs").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["jobs"], json!([]), "nothing half-created: {v}");
    d.stop().await;
}
