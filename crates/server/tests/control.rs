//! Control of a pool's workers through the daemon: the heap in `GET /v1/workers`, broadcast
//! (`POST /v1/pools/{name}/broadcast`) and kill (`POST /v1/pools/{name}/workers/{pid}/kill`),
//! with every refusal typed. Real daemon, real Node workers; the process table is read.

mod common;

use std::time::{Duration, Instant};

use common::http::{get, post, submit, wait_result};
use common::{config, examples, Running};
use serde_json::{json, Value};

/// A hang guard for the waits below (not a timing claim).
const GUARD: Duration = Duration::from_secs(60);

/// The node pool pings its idle workers every 50 ms (`ping_interval_ms`), so the heap shows at
/// once; its recycling thresholds are set far above what `hello` uses.
const TOML: &str = "[[pool]]\nname = \"node\"\njobs = [\"**\"]\nkind = \"node\"\n\
    ping_interval_ms = 50\nping_timeout_ms = 30000\nmax_heap_mb = 4096\n\
    max_cpu_percent = 10000\ncpu_samples = 1000\n";

async fn start() -> Running {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&examples(), &tmp.path().join("data"), TOML);
    Running::start(tmp, cfg).await
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next());
        state != Some("Z") && state != Some("X")
    })
}

/// The node pool's workers as `GET /v1/workers` lists them.
async fn node_workers(d: &Running) -> Vec<Value> {
    let (s, v) = get(d, "/v1/workers").await;
    assert_eq!(s, 200, "{v}");
    v["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["pool"] == "node")
        .cloned()
        .collect()
}

/// Runs a job on the node pool so that it has a worker; its pid.
async fn a_node_worker(d: &Running) -> u64 {
    let id = submit(d, json!({"job": "hello"})).await;
    assert_eq!(wait_result(d, &id).await["state"], "succeeded");
    node_workers(d).await[0]["pid"].as_u64().unwrap()
}

#[tokio::test]
async fn workers_show_heap_broadcast_reaches_them_and_a_soft_kill_replaces_one() {
    let d = start().await;
    let pid = a_node_worker(&d).await;
    // The heap arrives with the first pong.
    let start = Instant::now();
    loop {
        let w = node_workers(&d).await;
        let me = w.iter().find(|w| w["pid"] == pid).unwrap();
        if me["heap_used"].is_u64() {
            assert!(me["heap_total"].as_u64().unwrap() >= me["heap_used"].as_u64().unwrap());
            break;
        }
        assert!(start.elapsed() < GUARD, "no heap shown: {me}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, v) = post(
        &d,
        "/v1/pools/node/broadcast",
        json!({"name": "config-changed", "data": {"level": "debug"}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["pool"], "node");
    assert_eq!(v["acks"], json!([{"pid": pid, "acked": true}]), "{v}");
    let (s, v) = post(
        &d,
        &format!("/v1/pools/node/workers/{pid}/kill"),
        json!({"mode": "soft", "grace_ms": 2000}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"pool": "node", "pid": pid, "mode": "soft", "grace_ms": 2000})
    );
    let start = Instant::now();
    while alive(pid) {
        assert!(start.elapsed() < GUARD, "worker {pid} still alive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The pool still runs jobs.
    let id = submit(&d, json!({"job": "hello"})).await;
    assert_eq!(wait_result(&d, &id).await["state"], "succeeded");
}

#[tokio::test]
async fn a_hard_kill_ends_the_worker_and_the_event_stream_says_so() {
    let d = start().await;
    let pid = a_node_worker(&d).await;
    let mut events = common::http::client()
        .get(format!("{}/v1/events", d.url()))
        .send()
        .await
        .unwrap();
    let (s, v) = post(
        &d,
        &format!("/v1/pools/node/workers/{pid}/kill"),
        json!({"mode": "hard", "grace_ms": 0}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let text = common::http::events_until(&mut events, "\"event\":\"killed\"").await;
    assert!(text.contains(&format!("\"pid\":{pid}")), "{text}");
    assert!(text.contains("\"reason\":\"hard\""), "{text}");
    let start = Instant::now();
    while alive(pid) {
        assert!(start.elapsed() < GUARD, "worker {pid} still alive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn bad_kills_and_broadcasts_are_typed_refusals() {
    let d = start().await;
    let pid = a_node_worker(&d).await;
    let cases = [
        (
            format!("/v1/pools/nope/workers/{pid}/kill"),
            json!({}),
            404,
            "not_found",
        ),
        (
            "/v1/pools/node/workers/1/kill".to_owned(),
            json!({}),
            404,
            "not_found",
        ),
        (
            "/v1/pools/node/workers/abc/kill".to_owned(),
            json!({}),
            400,
            "invalid_request",
        ),
        (
            format!("/v1/pools/node/workers/{pid}/kill"),
            json!({"grace_ms": 600_001}),
            400,
            "invalid_request",
        ),
        (
            format!("/v1/pools/node/workers/{pid}/kill"),
            json!({"mode": "gentle"}),
            400,
            "invalid_json",
        ),
        (
            "/v1/pools/nope/broadcast".to_owned(),
            json!({"name": "x"}),
            404,
            "not_found",
        ),
        (
            "/v1/pools/node/broadcast".to_owned(),
            json!({"name": ""}),
            400,
            "invalid_request",
        ),
        (
            "/v1/pools/node/broadcast".to_owned(),
            json!({"name": "x", "data": "y".repeat(70_000)}),
            400,
            "invalid_request",
        ),
        (
            "/v1/pools/node/broadcast".to_owned(),
            json!({"name": "x", "timeout_ms": 60_001}),
            400,
            "invalid_request",
        ),
    ];
    for (path, body, status, code) in cases {
        let (s, v) = post(&d, &path, body.clone()).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{path} {body}: {v}"
        );
    }
    // Nothing was killed by the refusals.
    assert!(alive(pid));
    assert_eq!(node_workers(&d).await[0]["pid"], pid);
}
