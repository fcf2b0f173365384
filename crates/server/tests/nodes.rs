//! The node registry and drain, on PostgreSQL with two nodes (each booted in this process on a
//! runtime of its own, real workers, a scratch database per test): `GET /v1/nodes`, drain and
//! undrain through the *other* node, the hand-back past the deadline, SIGTERM's drain, a lost
//! node, and a live node id refusing a second start. The SQLite node (one node, same API) is
//! covered in `serve.rs`-style by `registry_on_sqlite` here.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http::{get, post, submit, wait_result, wait_state};
use common::{config, Running};
use offload_server::Daemon;
use offload_store_pg::testing::TestDb;
use offload_store_pg::PgStore;
use serde_json::{json, Value};

const LEASE: Duration = Duration::from_secs(2);

/// Waits until the file `p.gate` exists, then answers its pid. Its pool: one worker, four jobs
/// at once.
const GATE_JOB: &str = r#"
const fs = require('fs');
module.exports = async (p) => {
  while (!fs.existsSync(p.gate)) await new Promise((r) => setTimeout(r, 10));
  return process.pid;
};
"#;
const TOML: &str = "[[pool]]\nname = \"gate\"\njobs = [\"gate\"]\nkind = \"node\"\nmin = 1\nmax = 1\nconcurrency = 4\n";

fn node_cfg(jobs: &Path, tmp: &Path, name: &str, db: &TestDb) -> offload_server::ServeConfig {
    let data = tmp.join(name);
    std::fs::create_dir_all(&data).unwrap();
    let mut cfg = config(jobs, &data, TOML);
    cfg.store = Some(db.url.clone());
    cfg.lease = LEASE;
    cfg.node = format!("node-{name}");
    cfg
}

/// A node as `offload serve --store URL --lease 2s --node-id node-NAME` starts it.
async fn node(jobs: &Path, tmp: &Path, name: &str, db: &TestDb) -> Running {
    let cfg = node_cfg(jobs, tmp, name, db);
    let url = db.url.clone();
    Running::boot_with(move || async move {
        let store = PgStore::connect(&url).await.unwrap();
        let notices = store.notifications();
        let daemon = Daemon::start(cfg, Arc::new(store)).await.unwrap();
        tokio::spawn(daemon.handle().follow(notices));
        daemon
    })
    .await
}

/// The row of node `id` in `GET /v1/nodes` on `d`.
async fn row(d: &Running, id: &str) -> Value {
    let (s, v) = get(d, "/v1/nodes").await;
    assert_eq!(s, 200, "{v}");
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no node {id}: {v}"))
}

/// Polls `GET /v1/nodes` on `d` until node `id`'s row satisfies `ok` (a hang guard of 60 s).
async fn until_row(d: &Running, id: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = row(d, id).await;
        if ok(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "node {id} never {what}: {r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until node `id` has beaten twice after `since` (store clock): it has read its drain
/// order back and follows it.
async fn heard(d: &Running, id: &str, since: i64) {
    let first = until_row(d, id, "beat after the order", |r| {
        r["heartbeat_at"].as_i64().unwrap() > since
    })
    .await["heartbeat_at"]
        .as_i64()
        .unwrap();
    until_row(d, id, "beat again", |r| {
        r["heartbeat_at"].as_i64().unwrap() > first
    })
    .await;
}

/// Polls `GET /v1/jobs/{id}` on `d` until the job runs on `node` (a hang guard of 60 s).
async fn running_on(d: &Running, id: &str, node: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, j) = get(d, &format!("/v1/jobs/{id}")).await;
        if j["state"] == "running" && j["node"] == node {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} never ran on {node}: {j}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `n` gate jobs submitted on `d`: their ids.
async fn gates(d: &Running, gate: &Path, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(submit(d, json!({"job": "gate", "params": {"gate": gate}})).await);
    }
    ids
}

/// `(node, outcome, attempt)` of every attempt of job `id`.
async fn attempts(d: &Running, id: &str) -> (Value, Vec<(String, String, u64)>) {
    let (_, j) = get(d, &format!("/v1/jobs/{id}")).await;
    let list = j["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["node"].as_str().unwrap_or("").to_owned(),
                a["outcome"].as_str().unwrap_or("").to_owned(),
                a["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    (j, list)
}

fn setup() -> (TestDb, tempfile::TempDir, std::path::PathBuf) {
    let db = TestDb::create();
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(jobs.join("gate.js"), GATE_JOB).unwrap();
    (db, tmp, jobs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_node_finishes_its_jobs_hands_back_the_rest_and_undrains() {
    let (db, tmp, jobs) = setup();
    let a = node(&jobs, tmp.path(), "a", &db).await;
    // A alone: it takes the first jobs.
    let gate1 = tmp.path().join("gate1");
    let first = gates(&a, &gate1, 2).await;
    for id in &first {
        running_on(&a, id, "node-a").await;
    }
    let b = node(&jobs, tmp.path(), "b", &db).await;

    // Both nodes are listed, through either.
    let (s, v) = get(&b, "/v1/nodes").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["this"], "node-b");
    assert_eq!(v["lost_after_ms"], 2000);
    let ids: Vec<_> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].clone())
        .collect();
    assert_eq!(ids, [json!("node-a"), json!("node-b")], "{v}");
    let ra = until_row(&b, "node-a", "reported its jobs", |r| r["running"] == 2).await;
    assert_eq!(ra["state"], "active", "{ra}");
    assert_eq!(ra["version"], env!("CARGO_PKG_VERSION"), "{ra}");
    assert_eq!(ra["pools"], json!(["gate"]), "{ra}");
    assert_eq!(ra["capacity"], 4, "{ra}");
    assert!(ra["host"].as_str().is_some_and(|h| !h.is_empty()), "{ra}");

    // Drain A through B, with a long deadline: A's running jobs go on, new jobs go to B.
    let (s, d) = post(
        &b,
        "/v1/nodes/node-a/drain",
        json!({"deadline_ms": 600_000, "then": "idle"}),
    )
    .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["state"], "draining", "{d}");
    assert_eq!(d["drain"]["then"], "idle", "{d}");
    heard(&b, "node-a", d["drain"]["requested_at"].as_i64().unwrap()).await;
    let gate2 = tmp.path().join("gate2");
    std::fs::write(&gate2, "").unwrap();
    let later = gates(&a, &gate2, 4).await;
    for id in &later {
        assert_eq!(wait_result(&a, id).await["state"], "succeeded");
        let (j, list) = attempts(&b, id).await;
        assert_eq!(list, [("node-b".into(), "succeeded".into(), 1)], "{j}");
    }
    // A's own jobs finish on A, once released; then A is drained.
    std::fs::write(&gate1, "").unwrap();
    for id in &first {
        assert_eq!(wait_result(&b, id).await["state"], "succeeded");
        let (j, list) = attempts(&b, id).await;
        assert_eq!(list, [("node-a".into(), "succeeded".into(), 1)], "{j}");
    }
    until_row(&b, "node-a", "drained", |r| r["state"] == "drained").await;

    // Undrain A through B; drain B now, with a deadline already past and B's jobs blocked:
    // they are handed back, and A runs them (the attempt not counted).
    let (s, u) = post(&b, "/v1/nodes/node-a/undrain", json!({})).await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["state"], "active", "{u}");
    assert!(u.get("drain").is_none(), "{u}");
    let gate3 = tmp.path().join("gate3");
    // Drain A again, so that B takes the next jobs, then undrain it once B runs them.
    let (_, d) = post(
        &a,
        "/v1/nodes/node-a/drain",
        json!({"deadline_ms": 600_000}),
    )
    .await;
    heard(&a, "node-a", d["drain"]["requested_at"].as_i64().unwrap()).await;
    let third = gates(&a, &gate3, 2).await;
    for id in &third {
        running_on(&b, id, "node-b").await;
    }
    let (s, _) = post(&a, "/v1/nodes/node-a/undrain", json!({})).await;
    assert_eq!(s, 200);
    let (s, d) = post(&a, "/v1/nodes/node-b/drain", json!({"deadline_ms": 0})).await;
    assert_eq!(s, 200, "{d}");
    for id in &third {
        running_on(&a, id, "node-a").await;
    }
    std::fs::write(&gate3, "").unwrap();
    for id in &third {
        assert_eq!(wait_result(&a, id).await["state"], "succeeded");
        let (j, list) = attempts(&a, id).await;
        assert_eq!(
            list,
            [
                ("node-b".into(), "handed_back".into(), 1),
                ("node-a".into(), "succeeded".into(), 1)
            ],
            "{j}"
        );
        assert_eq!(j["attempt"], 1, "{j}");
    }
    until_row(&a, "node-b", "drained", |r| r["state"] == "drained").await;

    // Refusals: an unknown node, a deadline over a day, a bad body.
    let (s, e) = post(&a, "/v1/nodes/nobody/drain", json!({})).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{e}"
    );
    let (s, e) = post(&a, "/v1/nodes/nobody/undrain", json!({})).await;
    assert_eq!(s, 404, "{e}");
    let (s, e) = post(
        &a,
        "/v1/nodes/node-b/drain",
        json!({"deadline_ms": 86_400_001}),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{e}"
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deadline_ms"),
        "{e}"
    );
    for bad in [json!({"then": "explode"}), json!([null, null]), json!(7)] {
        let (s, e) = post(&a, "/v1/nodes/node-b/drain", bad).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (400, Some("invalid_json")),
            "{e}"
        );
    }

    // B dies (as SIGKILL): shown as lost once its heartbeat is older than the lease.
    b.crash();
    until_row(&a, "node-b", "lost", |r| r["state"] == "lost").await;
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_a_live_node_id_refuses_a_second_start() {
    let (db, tmp, jobs) = setup();
    let a = node(&jobs, tmp.path(), "a", &db).await;

    // A second node with A's id, while A lives: refused, saying what to fix.
    let cfg = node_cfg(&jobs, tmp.path(), "a-twin", &db);
    let mut cfg = cfg;
    cfg.node = "node-a".into();
    let store = PgStore::connect(&db.url).await.unwrap();
    let e = Daemon::start(cfg, Arc::new(store))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("node id \"node-a\" is in use by a live node"),
        "{e}"
    );
    assert!(e.contains("--node-id"), "{e}");
    let (_, v) = get(&a, "/v1/nodes").await;
    assert_eq!(v["nodes"].as_array().unwrap().len(), 1, "{v}");

    // SIGTERM's drain: A's blocked jobs get the deadline, then are handed back; B runs them.
    let gate = tmp.path().join("gate");
    let ids = gates(&a, &gate, 2).await;
    for id in &ids {
        wait_state(&a, id, "running").await;
    }
    let b = node(&jobs, tmp.path(), "b", &db).await;
    a.drain_and_stop(Duration::from_millis(300)).await;
    until_row(&b, "node-a", "stopped", |r| r["state"] == "stopped").await;
    for id in &ids {
        running_on(&b, id, "node-b").await;
    }
    std::fs::write(&gate, "").unwrap();
    for id in &ids {
        assert_eq!(wait_result(&b, id).await["state"], "succeeded");
        let (j, list) = attempts(&b, id).await;
        assert_eq!(
            list,
            [
                ("node-a".into(), "handed_back".into(), 1),
                ("node-b".into(), "succeeded".into(), 1)
            ],
            "{j}"
        );
    }
    // A stopped node's id starts again at once.
    let a = node(&jobs, tmp.path(), "a", &db).await;
    until_row(&b, "node-a", "active again", |r| r["state"] == "active").await;
    drop((a, b));
}
