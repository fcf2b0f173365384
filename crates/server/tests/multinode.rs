//! Several daemons on one PostgreSQL database (`--store postgres://…`), each booted in this
//! process on a runtime of its own (so that one can crash as SIGKILL would end it), real
//! workers, a scratch database per test (created and dropped by
//! `offload_store_pg::testing::TestDb`, which starts or installs PostgreSQL when needed).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http::{get, post, wait_result};
use common::{config, Running};
use offload_server::Daemon;
use offload_store_pg::testing::TestDb;
use offload_store_pg::PgStore;
use serde_json::{json, Value};

/// A node of the cluster, as `offload serve --store URL --lease 2s` starts it: the store and
/// the task that follows the other nodes' notifications live on the node's own runtime.
async fn node(jobs: &Path, tmp: &Path, name: &str, db: &TestDb, toml: &str) -> Running {
    let data = tmp.join(name);
    std::fs::create_dir_all(&data).unwrap();
    let mut cfg = config(jobs, &data, toml);
    cfg.store = Some(db.url.clone());
    cfg.lease = Duration::from_secs(2);
    cfg.node = format!("node-{name}");
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

/// Writes `start N PID MS` and `end N PID MS` lines to the file `log` around a sleep.
const LOGGED_JOB: &str = r#"
const fs = require('fs');
module.exports = async (p) => {
  fs.appendFileSync(p.log, `start ${p.n} ${process.pid} ${Date.now()}\n`);
  await new Promise((r) => setTimeout(r, p.ms));
  fs.appendFileSync(p.log, `end ${p.n} ${process.pid} ${Date.now()}\n`);
  return p.n;
};
"#;

/// One run of a job, from the log.
#[derive(Debug, Clone, Copy)]
struct Run {
    pid: u32,
    start: i64,
    end: Option<i64>,
}

fn runs(log: &Path) -> BTreeMap<u64, Vec<Run>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut out: BTreeMap<u64, Vec<Run>> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 4, "a torn log line: {line:?}");
        let (n, pid, t): (u64, u32, i64) = (
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
        );
        let list = out.entry(n).or_default();
        match f[0] {
            "start" => list.push(Run {
                pid,
                start: t,
                end: None,
            }),
            "end" => {
                let run = list
                    .iter_mut()
                    .rev()
                    .find(|r| r.pid == pid && r.end.is_none())
                    .unwrap_or_else(|| panic!("an end without a start: {line:?}"));
                run.end = Some(t);
            }
            other => panic!("unknown log line {other:?}"),
        }
    }
    out
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_load_loses_nothing_and_no_job_runs_twice_at_once() {
    let db = TestDb::create();
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(jobs.join("logged.js"), LOGGED_JOB).unwrap();
    let log = tmp.path().join("runs.log");
    let log_s = log.to_str().unwrap().to_owned();

    let a = node(&jobs, tmp.path(), "a", &db, "").await;
    let b = node(&jobs, tmp.path(), "b", &db, "").await;
    // C gets no submit at all: it learns of the jobs from the others' NOTIFY.
    let c = node(&jobs, tmp.path(), "c", &db, "").await;
    let (name_a, name_c) = ("node-a".to_owned(), "node-c".to_owned());
    let mut a = Some(a);

    let mut accepted: Vec<(u64, String)> = Vec::new();
    let mut killed_at = None;
    let mut n = 0u64;
    for round in 0..24 {
        let batch: Vec<Value> = (0..10)
            .map(|i| json!({"job": "logged", "params": {"n": n + i, "log": log_s, "ms": 150}}))
            .collect();
        // Alternate between A and B while A lives.
        let target = match &a {
            Some(a) if round % 2 == 0 => a,
            _ => &b,
        };
        let (s, v) = post(target, "/v1/jobs/batch", json!({ "jobs": batch })).await;
        assert_eq!(s, 201, "{v}");
        for (i, j) in v["jobs"].as_array().unwrap().iter().enumerate() {
            accepted.push((n + i as u64, j["id"].as_str().unwrap().to_owned()));
        }
        n += 10;
        if round == 8 {
            // SIGKILL A while it runs jobs, once it has finished some (its workers count them),
            // no grace. More work for A while it has none.
            let deadline = Instant::now() + Duration::from_secs(60);
            let node_a = a.as_ref().unwrap();
            loop {
                let (_, running) = get(&b, "/v1/jobs?state=running&limit=100").await;
                let running = running["jobs"].as_array().unwrap().clone();
                let (_, workers) = get(node_a, "/v1/workers").await;
                let done_by_a: u64 = workers["workers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|w| w["jobs_done"].as_u64())
                    .sum();
                if done_by_a > 0 && running.iter().any(|j| j["node"] == name_a.as_str()) {
                    break;
                }
                let (_, queued) = get(&b, "/v1/jobs?state=queued&limit=1").await;
                if running.is_empty() && queued["jobs"].as_array().unwrap().is_empty() {
                    let batch: Vec<Value> = (0..10)
                        .map(|i| json!({"job": "logged", "params": {"n": n + i, "log": log_s, "ms": 150}}))
                        .collect();
                    let (s, v) = post(node_a, "/v1/jobs/batch", json!({ "jobs": batch })).await;
                    assert_eq!(s, 201, "{v}");
                    for (i, j) in v["jobs"].as_array().unwrap().iter().enumerate() {
                        accepted.push((n + i as u64, j["id"].as_str().unwrap().to_owned()));
                    }
                    n += 10;
                }
                assert!(
                    Instant::now() < deadline,
                    "A never runs and finishes anything: {running:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // As SIGKILL: no stop, no lease given back; its workers are killed.
            a.take().unwrap().crash();
            killed_at = Some(now_ms());
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let killed_at = killed_at.unwrap();

    // Every accepted job completes; B answers for all of them (long polls of jobs that run on C
    // wake on C's notifications).
    for (_, id) in &accepted {
        let r = wait_result(&b, id).await;
        assert_eq!(r["state"], "succeeded", "{id}: {r}");
    }

    // Who ran what, from the store (read through C).
    let mut per_node: HashMap<String, usize> = HashMap::new();
    let mut lease_expired = 0;
    for (_, id) in &accepted {
        let (s, j) = get(&c, &format!("/v1/jobs/{id}")).await;
        assert_eq!(s, 200, "{j}");
        let attempts = j["attempts"].as_array().unwrap();
        let last = attempts.last().unwrap();
        assert_eq!(last["outcome"], "succeeded", "{j}");
        *per_node
            .entry(last["node"].as_str().unwrap().to_owned())
            .or_default() += 1;
        for a in &attempts[..attempts.len() - 1] {
            // Only A's runs were cut short, and they count as attempts.
            assert_eq!(a["outcome"], "lease_expired", "{j}");
            assert_eq!(a["node"], name_a.as_str(), "{j}");
            lease_expired += 1;
        }
        assert_eq!(j["attempt"], attempts.len(), "{j}");
    }
    assert!(lease_expired > 0, "no job of A was reclaimed");
    assert!(
        per_node.get(&name_c).copied().unwrap_or(0) > 0,
        "C never woke up: {per_node:?}"
    );
    assert!(
        per_node.get(&name_a).copied().unwrap_or(0) > 0,
        "{per_node:?}"
    );

    // No job ran twice at the same time: per job, each run starts after the previous one ended
    // (or, for a run cut by the SIGKILL, after the kill).
    let runs = runs(&log);
    assert_eq!(runs.len(), accepted.len(), "every job ran");
    let mut reruns = 0;
    for (n, list) in &runs {
        let mut list = list.clone();
        list.sort_by_key(|r| r.start);
        assert!(
            list.iter().any(|r| r.end.is_some()),
            "job {n} never finished"
        );
        for w in list.windows(2) {
            let prev_end = w[0].end.unwrap_or_else(|| {
                assert!(
                    w[0].start <= killed_at,
                    "job {n}: a run cut short but not by the kill: {list:?}"
                );
                killed_at
            });
            assert!(
                w[1].start >= prev_end,
                "job {n} ran twice at the same time: {list:?}"
            );
            reruns += 1;
        }
        for r in &list {
            if r.end.is_none() {
                assert!(
                    r.start <= killed_at,
                    "job {n}: an unfinished run after the kill: {r:?}"
                );
            }
        }
    }
    // A run again is a reclaimed attempt (a reclaimed attempt may not have started its run).
    assert!(
        reruns <= lease_expired,
        "{reruns} reruns, {lease_expired} reclaimed attempts"
    );

    // The counts agree: everything succeeded, nothing waits.
    let (_, page) = get(&b, "/v1/jobs?limit=1000").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), accepted.len());
    let (_, page) = get(&b, "/v1/jobs?state=succeeded&limit=1000").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), accepted.len());
    let (_, pools) = get(&c, "/v1/pools").await;
    let node_pool = pools["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "node")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        (&node_pool["queued"], &node_pool["running"]),
        (&json!(0), &json!(0)),
        "{pools}"
    );
    drop((b, c));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_answers_cancels_and_fires_each_cron_tick_once() {
    let db = TestDb::create();
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(
        jobs.join("sleepy.js"),
        "module.exports = async (p, ctx) => { await new Promise(r => setTimeout(r, p.ms)); return p.ms; };",
    )
    .unwrap();
    // Both nodes have the same schedule, every second.
    let toml = "[limits]\nmin_cron_interval_ms = 1000\n\n[[cron]]\nname = \"tick\"\ncron = \"* * * * * *\"\njob = \"sleepy\"\nparams = { ms = 1 }\n";
    let a = node(&jobs, tmp.path(), "a", &db, toml).await;
    let b = node(&jobs, tmp.path(), "b", &db, toml).await;
    let nodes = [("node-a", &a), ("node-b", &b)];

    // A job far longer than any wait of this test, submitted on A: whichever node runs it,
    // cancel it from the other one. Only the runner stopping it can end it before the long
    // poll's hang guard: that it ends, cancelled, shows the cancel reached the runner.
    let (s, v) = post(
        &a,
        "/v1/jobs",
        json!({"job": "sleepy", "params": {"ms": 3_600_000}}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let runner = loop {
        let (_, j) = get(&b, &format!("/v1/jobs/{id}")).await;
        if j["state"] == "running" {
            break j["node"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "never ran: {j}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let other = nodes.iter().find(|(n, _)| *n != runner).unwrap().1;
    let (s, v) = post(other, &format!("/v1/jobs/{id}/cancel"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    let r = wait_result(other, &id).await;
    assert_eq!(r["state"], "cancelled", "{r}");
    let (_, j) = get(other, &format!("/v1/jobs/{id}")).await;
    let last = j["attempts"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!(
        (last["node"].as_str(), last["outcome"].as_str()),
        (Some(runner.as_str()), Some("cancelled")),
        "the runner's attempt ended by the cancel: {j}"
    );

    // A job submitted on one node and run anywhere: its result long-polls from the other.
    let (_, v) = post(
        &b,
        "/v1/jobs",
        json!({"job": "sleepy", "params": {"ms": 200}}),
    )
    .await;
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(wait_result(&a, &id).await["result"], 200);

    // Cron: wait for a few ticks; each fired exactly once although both nodes fire them.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, page) = get(&a, "/v1/jobs?limit=1000&include=params").await;
        let ticks = page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["params"] == json!({"ms": 1}))
            .count();
        if ticks >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the schedule fired {ticks} times"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let row = db.query_i64(
        "SELECT count(*), count(DISTINCT cron_tick) FROM offload_jobs \
         WHERE cron_schedule = 'tick'",
    );
    let (jobs_n, ticks_n) = (row[0], row[1]);
    assert_eq!(jobs_n, ticks_n, "a tick fired twice");
    assert!(jobs_n >= 3);
}

/// The schedules of `d`, by name: (paused reason or null).
async fn schedules(d: &Running) -> BTreeMap<String, Value> {
    let (s, v) = get(d, "/v1/cron").await;
    assert_eq!(s, 200, "{v}");
    v["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["paused"]["reason"].clone(),
            )
        })
        .collect()
}

/// Waits (bounded) until `d`'s schedules are `want`.
async fn schedules_become(d: &Running, want: &[(&str, Value)], what: &str) {
    let want: BTreeMap<String, Value> = want
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.clone()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = schedules(d).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {got:?} is not {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Before, a node read the API's schedules only at its start: one created, paused or deleted on
/// node A stayed unknown (or stale) on node B until B restarted. Now the store tells every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_schedules_and_their_pauses_reach_every_node_without_a_restart() {
    let db = TestDb::create();
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(jobs.join("noop.js"), "module.exports = async () => 1;").unwrap();
    let a = node(&jobs, tmp.path(), "a", &db, "").await;
    let b = node(&jobs, tmp.path(), "b", &db, "").await;
    assert!(schedules(&b).await.is_empty());

    // Created on A (once a year: no tick fires during the test).
    let (s, v) = post(
        &a,
        "/v1/cron",
        json!({"name": "yearly", "cron": "0 0 1 1 *", "job": "noop"}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    schedules_become(&b, &[("yearly", Value::Null)], "created on A, seen on B").await;

    // Paused on B: A shows it paused; resumed on A: B shows it running again.
    let (s, v) = post(&b, "/v1/cron/yearly/pause", json!({})).await;
    assert_eq!(s, 204, "{v}");
    schedules_become(&a, &[("yearly", json!("manual"))], "paused on B, seen on A").await;
    let (s, v) = post(&a, "/v1/cron/yearly/resume", json!({})).await;
    assert_eq!(s, 204, "{v}");
    schedules_become(&b, &[("yearly", Value::Null)], "resumed on A, seen on B").await;

    // Replaced on B with another expression: A ticks by the new one.
    let (s, v) = post(
        &b,
        "/v1/cron",
        json!({"name": "yearly", "cron": "0 0 2 1 *", "job": "noop"}),
    )
    .await;
    assert!(s == 200 || s == 201, "{s} {v}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = get(&a, "/v1/cron").await;
        if v["schedules"][0]["cron"] == "0 0 2 1 *" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replacement never reached A: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Deleted on A: gone from B.
    let r = common::http::client()
        .delete(format!("{}/v1/cron/yearly", a.url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    schedules_become(&b, &[], "deleted on A, gone from B").await;
}

/// Before, progress went to the event stream of the node running the job only: a client of
/// another node saw the job start and end, nothing between. Now it reaches every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_of_a_job_running_on_one_node_reaches_the_event_stream_of_another() {
    let db = TestDb::create();
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(
        jobs.join("steps.js"),
        "module.exports = async (p, ctx) => { for (let i = 1; i <= p.n; i++) { \
         await new Promise((r) => setTimeout(r, 100)); ctx.progress({ step: i }); } return p.n; };",
    )
    .unwrap();
    let a = node(&jobs, tmp.path(), "a", &db, "").await;
    let b = node(&jobs, tmp.path(), "b", &db, "").await;
    let nodes = [("node-a", &a), ("node-b", &b)];
    // Long enough to be running when the stream opens: the job waits on the stream below.
    let (s, v) = post(
        &a,
        "/v1/jobs",
        json!({"job": "steps", "params": {"n": 600}}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let runner = loop {
        let (_, j) = get(&a, &format!("/v1/jobs/{id}")).await;
        if j["state"] == "running" {
            break j["node"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "never ran: {j}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let other = nodes.iter().find(|(n, _)| *n != runner).unwrap().1;
    let mut events = common::http::client()
        .get(format!("{}/v1/events?id={id}", other.url()))
        .send()
        .await
        .unwrap();
    let text = common::http::events_until(&mut events, "event: progress").await;
    assert!(text.contains("\"step\":"), "{text}");
    let (s, _) = post(other, &format!("/v1/jobs/{id}/cancel"), json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(wait_result(other, &id).await["state"], "cancelled");
}

/// A pause made through node A stops node B's claims too (the claim statement reads it), and a
/// resume through B lets either run the job. "B had its chance" is shown by jobs of another
/// pool submitted after the paused one until one of them ran on B (no timing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_on_one_node_stops_every_nodes_claims() {
    let db = TestDb::create();
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    for name in ["held.js", "other.js"] {
        std::fs::write(jobs.join(name), "module.exports = async (p) => p;").unwrap();
    }
    let toml = "[[pool]]\nname = \"held\"\njobs = [\"held\"]\nkind = \"node\"\n";
    let a = node(&jobs, tmp.path(), "a", &db, toml).await;
    let b = node(&jobs, tmp.path(), "b", &db, toml).await;

    let (s, v) = post(&a, "/v1/pools/held/pause", json!({})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(&b, "/v1/jobs", json!({"job": "held", "params": {}})).await;
    assert_eq!(s, 201, "{v}");
    let held = v["id"].as_str().unwrap().to_owned();
    let mut ran_on = HashMap::<String, u32>::new();
    for n in 0..500 {
        let (s, v) = post(&b, "/v1/jobs", json!({"job": "other", "params": {"n": n}})).await;
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_str().unwrap().to_owned();
        assert_eq!(wait_result(&b, &id).await["state"], "succeeded");
        let (_, j) = get(&a, &format!("/v1/jobs/{id}")).await;
        *ran_on
            .entry(
                j["attempts"][0]["node"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
            .or_default() += 1;
        if ran_on.contains_key("node-b") && ran_on.contains_key("node-a") {
            break;
        }
    }
    assert!(
        ran_on.contains_key("node-b") && ran_on.contains_key("node-a"),
        "{ran_on:?}"
    );
    let (_, j) = get(&b, &format!("/v1/jobs/{held}")).await;
    assert_eq!(j["state"], "queued", "{j}");
    let (_, q) = get(&b, "/v1/queues").await;
    assert_eq!(q["queues"][0]["name"], "held", "{q}");

    let (s, v) = post(&b, "/v1/pools/held/resume", json!({})).await;
    assert_eq!((s, v["changed"].as_bool()), (200, Some(true)), "{v}");
    assert_eq!(wait_result(&a, &held).await["state"], "succeeded");
    a.stop().await;
    b.stop().await;
}

/// Sums a count over the points of a `GET /v1/stats` answer.
fn stat_total(s: &Value, key: &str) -> u64 {
    s["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[key].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_of_every_node_merges_and_any_node_answers_for_all() {
    let db = TestDb::create();
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(jobs.join("quick.js"), "module.exports = async (p) => p;").unwrap();
    let toml = "[history]\nflush_ms = 100\n";
    let a = node(&jobs, tmp.path(), "a", &db, toml).await;
    let b = node(&jobs, tmp.path(), "b", &db, toml).await;

    // Submits alternate between the nodes until each node has run some.
    let mut ran_on = HashMap::<String, u64>::new();
    let mut submitted = 0u64;
    for n in 0..500 {
        let to = if n % 2 == 0 { &a } else { &b };
        let (s, v) = post(to, "/v1/jobs", json!({"job": "quick", "params": {"n": n}})).await;
        assert_eq!(s, 201, "{v}");
        submitted += 1;
        let id = v["id"].as_str().unwrap().to_owned();
        assert_eq!(wait_result(to, &id).await["state"], "succeeded");
        let (_, j) = get(to, &format!("/v1/jobs/{id}")).await;
        let node = j["attempts"][0]["node"].as_str().unwrap_or_default();
        *ran_on.entry(node.to_owned()).or_default() += 1;
        if n >= 3 && ran_on.len() == 2 {
            break;
        }
    }
    assert_eq!(ran_on.len(), 2, "{ran_on:?}");

    // Each node adds its own counts; either answers with the sum (polled: a node adds every
    // 100 ms).
    for d in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (s, v) = get(d, "/v1/stats?job=quick&step=hour").await;
            assert_eq!(s, 200, "{v}");
            // A job submitted on one node may end on the other: each count arrives with the
            // flush of the node that saw it.
            let got = ["submitted", "succeeded", "ended"].map(|k| stat_total(&v, k));
            if got == [submitted; 3] {
                break;
            }
            assert!(got.iter().all(|&n| n <= submitted), "counted twice: {v}");
            assert!(Instant::now() < deadline, "the history never merged: {v}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    a.stop().await;
    b.stop().await;
}
