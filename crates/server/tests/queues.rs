//! Paused queues end to end: a paused pool or job name keeps its jobs queued while the others
//! run, across a restart of the daemon; resumed, they run. Each change is on the event stream.
//! No timing: "the dispatcher had its chance" is shown by a later job of another queue that
//! was claimed and ran (every claim considers every pool with room).

mod common;

use common::http::{client as http, events_until, get, post, submit, wait_result};
use common::{config, examples, sqlite, Running};
use serde_json::json;

const TOML: &str = r#"
[[pool]]
name = "held"
jobs = ["hello"]
kind = "node"
max = 1
"#;

async fn state(d: &Running, id: &str) -> String {
    let (_, job) = get(d, &format!("/v1/jobs/{id}")).await;
    job["state"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_paused_pool_keeps_its_jobs_across_a_restart_until_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = config(&examples(), &data, TOML);
    let store = sqlite(&cfg);
    let d = Running::boot_async(cfg, store).await;
    let mut events = http()
        .get(format!("{}/v1/events", d.url()))
        .send()
        .await
        .unwrap();

    let (s, v) = post(&d, "/v1/pools/held/pause", json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"kind": "pool", "name": "held", "paused": true, "changed": true})
    );
    let text = events_until(&mut events, "\"change\":\"paused\"").await;
    assert!(text.contains("event: queue"), "{text}");
    assert!(
        text.contains("\"kind\":\"pool\",\"name\":\"held\""),
        "{text}"
    );
    let (_, v) = post(&d, "/v1/pools/held/pause", json!({})).await;
    assert_eq!(v["changed"], false, "{v}");

    let held = submit(&d, json!({"job": "hello", "params": {"name": "held"}})).await;
    let other = submit(&d, json!({"job": "primes", "params": {"limit": 100}})).await;
    assert_eq!(wait_result(&d, &other).await["state"], "succeeded");
    assert_eq!(state(&d, &held).await, "queued");
    let (_, pools) = get(&d, "/v1/pools").await;
    let paused: Vec<_> = pools["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["paused"].as_bool().unwrap()))
        .collect();
    assert!(paused.contains(&("held", true)), "{pools}");
    assert!(paused.contains(&("node", false)), "{pools}");
    drop(events);
    d.crash();

    // A new daemon on the same data folder (the first one ended as SIGKILL ends it): the
    // pause is in the store.
    let d = Running::start_with(
        config(&examples(), &data, TOML),
        sqlite(&config(&examples(), &data, TOML)),
    )
    .await;
    let (_, q) = get(&d, "/v1/queues").await;
    assert_eq!(q["queues"][0]["kind"], "pool", "{q}");
    assert_eq!(q["queues"][0]["name"], "held", "{q}");
    let other = submit(&d, json!({"job": "primes", "params": {"limit": 100}})).await;
    assert_eq!(wait_result(&d, &other).await["state"], "succeeded");
    assert_eq!(state(&d, &held).await, "queued");

    let (s, v) = post(&d, "/v1/pools/held/resume", json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["changed"], true, "{v}");
    let r = wait_result(&d, &held).await;
    assert_eq!(r["state"], "succeeded", "{r}");
    let (_, q) = get(&d, "/v1/queues").await;
    assert_eq!(q, json!({"queues": []}));
    d.stop().await;
    drop(tmp);
}

#[tokio::test]
async fn a_paused_job_name_waits_while_its_pool_runs_others() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&examples(), &tmp.path().join("data"), "");
    let d = Running::start(tmp, cfg).await;
    let (s, v) = post(&d, "/v1/queues/primes/pause", json!({})).await;
    assert_eq!(s, 200, "{v}");
    let waiting = submit(&d, json!({"job": "primes", "params": {"limit": 100}})).await;
    let other = submit(&d, json!({"job": "hello", "params": {}})).await;
    assert_eq!(wait_result(&d, &other).await["state"], "succeeded");
    assert_eq!(state(&d, &waiting).await, "queued");
    let (s, v) = post(&d, "/v1/queues/primes/resume", json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(wait_result(&d, &waiting).await["state"], "succeeded");
    // Resuming what is not paused says so; an unknown pool is not found; a long name is refused.
    let (_, v) = post(&d, "/v1/queues/primes/resume", json!({})).await;
    assert_eq!(v["changed"], false, "{v}");
    let (s, v) = post(&d, "/v1/pools/nope/pause", json!({})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));
    let long = "x".repeat(1025);
    let (s, v) = post(&d, &format!("/v1/queues/{long}/pause"), json!({})).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("1024"),
        "{v}"
    );
}
