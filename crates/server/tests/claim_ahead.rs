//! Claim-ahead (`[[pool]] claim_ahead`): a busy resident pool holds its slots plus that many
//! jobs, no more (none by default); a job held ahead starts when a slot frees, in claim
//! order, its attempt's `started_at` when it started, its log its own; a cancel ends it before
//! it runs; a drain hands it back at once, uncounted. Real Node workers, real SQLite, over
//! HTTP. Jobs are held by a gate file, so nothing depends on timing.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::http::{get, post, submit, wait_result, wait_state};
use common::{config, Running};
use serde_json::{json, Value};

/// Waits for `p.gate`, after appending `p.mark` to the file `p.log` (the jobs that started).
const GATE_JOB: &str = r#"
const fs = require('fs');
module.exports = async (p) => {
  fs.appendFileSync(p.log, p.mark + '\n');
  console.log('start ' + p.mark);
  while (!fs.existsSync(p.gate)) await new Promise((r) => setTimeout(r, 10));
  for (let i = 0; i < 200; i++) console.log(p.mark + ' ' + i);
  return p.mark;
};
"#;

struct Setup {
    d: Running,
    gate: std::path::PathBuf,
    log: std::path::PathBuf,
}

/// A daemon with one pool `gate` of one worker, one job at a time, and `extra` in its section.
async fn start(extra: &str) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(jobs.join("gate.js"), GATE_JOB).unwrap();
    let toml = format!(
        "[[pool]]\nname = \"gate\"\njobs = [\"gate\"]\nkind = \"node\"\nmin = 1\nmax = 1\nconcurrency = 1\n{extra}"
    );
    let gate = tmp.path().join("open");
    let log = tmp.path().join("started.log");
    let cfg = config(&jobs, &tmp.path().join("data"), &toml);
    let d = Running::start(tmp, cfg).await;
    Setup { d, gate, log }
}

impl Setup {
    async fn submit(&self, mark: &str) -> String {
        submit(
            &self.d,
            json!({"job": "gate", "params": {"gate": self.gate, "log": self.log, "mark": mark}}),
        )
        .await
    }

    /// The marks of the jobs that started, in order.
    fn started(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn open(&self) {
        std::fs::write(&self.gate, "").unwrap();
    }
}

/// A pool with `claim_ahead = 2`, one job running ("run") and two held ("held-1", "held-2").
async fn one_running_two_held() -> (Setup, Vec<String>) {
    let s = start("claim_ahead = 2\n").await;
    let mut ids = Vec::new();
    for mark in ["run", "held-1", "held-2"] {
        ids.push(s.submit(mark).await);
    }
    until_counts(&s.d, &ids, (3, 0)).await;
    (s, ids)
}

/// How many of `ids` are in each state: `(running, queued)`.
async fn counts(d: &Running, ids: &[String]) -> (usize, usize) {
    let (mut running, mut queued) = (0, 0);
    for id in ids {
        let (_, j) = get(d, &format!("/v1/jobs/{id}")).await;
        match j["state"].as_str() {
            Some("running") => running += 1,
            Some("queued") => queued += 1,
            _ => {}
        }
    }
    (running, queued)
}

/// Polls until `(running, queued)` of `ids` is `want` (a hang guard of a minute).
async fn until_counts(d: &Running, ids: &[String], want: (usize, usize)) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = counts(d, ids).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "(running, queued) stayed {got:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A job's attempts: `(started_at, ended_at, outcome)`.
async fn attempts(d: &Running, id: &str) -> Vec<(i64, i64, String)> {
    let (_, j) = get(d, &format!("/v1/jobs/{id}")).await;
    j["attempts"]
        .as_array()
        .unwrap_or_else(|| panic!("no attempts: {j}"))
        .iter()
        .map(|a: &Value| {
            (
                a["started_at"].as_i64().unwrap(),
                a["ended_at"].as_i64().unwrap_or(0),
                a["outcome"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Every line of a job's log (one page: fewer than its limit).
async fn log_lines(d: &Running, id: &str) -> Vec<String> {
    let (status, page) = get(d, &format!("/v1/jobs/{id}/logs?limit=1000")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page["next_cursor"].is_null(), "{page}");
    page["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            assert_eq!(
                (l["shared"].as_bool(), l["cut"].as_bool()),
                (Some(false), Some(false)),
                "{l}"
            );
            l["line"].as_str().unwrap().to_owned()
        })
        .collect()
}

async fn holds_slots_plus(extra: &str, ahead: usize) {
    let s = start(extra).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(s.submit(&format!("j{i}")).await);
    }
    // One job on the worker, `ahead` claimed for it; the rest stay queued.
    until_counts(&s.d, &ids, (1 + ahead, 4 - ahead)).await;
    // And no more, however long the worker stays busy (the dispatcher wakes every 100 ms).
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(counts(&s.d, &ids).await, (1 + ahead, 4 - ahead));
    // Only the first ever reached the worker; the pool's view says how many are held.
    assert_eq!(s.started(), ["j0"]);
    let (_, pools) = get(&s.d, "/v1/pools").await;
    let view = &pools["pools"][0];
    assert_eq!(
        (&view["claim_ahead"], &view["held"], &view["running"]),
        (&json!(ahead), &json!(ahead), &json!(1 + ahead)),
        "{pools}"
    );
    s.open();
    for (i, id) in ids.iter().enumerate() {
        let r = wait_result(&s.d, id).await;
        assert_eq!(
            (r["state"].as_str(), &r["result"]),
            (Some("succeeded"), &json!(format!("j{i}"))),
            "{r}"
        );
    }
    // One worker, one job at a time, in claim order: each attempt started when its worker got
    // it, after the one before ended, even the jobs that waited ahead.
    assert_eq!(s.started(), ["j0", "j1", "j2", "j3", "j4"]);
    let mut previous_end = 0;
    for id in &ids {
        let a = attempts(&s.d, id).await;
        assert_eq!(a.len(), 1, "{a:?}");
        let (started, ended, outcome) = a[0].clone();
        assert_eq!(outcome, "succeeded");
        assert!(
            started >= previous_end,
            "job {id} started at {started}, before {previous_end}"
        );
        previous_end = ended;
    }
    // Each log is its job's, whole: the next job started on the same worker right after.
    for (i, id) in ids.iter().enumerate() {
        let mark = format!("j{i}");
        let mut want = vec![format!("start {mark}")];
        want.extend((0..200).map(|n| format!("{mark} {n}")));
        assert_eq!(log_lines(&s.d, id).await, want, "job {id}");
    }
    s.d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_pool_claims_only_its_free_slots_by_default() {
    holds_slots_plus("", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_ahead_sets_how_many_jobs_wait_for_a_slot() {
    holds_slots_plus("claim_ahead = 1\n", 1).await;
    holds_slots_plus("claim_ahead = 3\n", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_hands_held_jobs_back_at_once_and_lets_the_running_one_finish() {
    let (s, ids) = one_running_two_held().await;
    let url = s.d.url();
    let Setup { d, gate, log } = s;
    // A drain with a long deadline: the held jobs go back to the queue now, uncounted, while
    // the running one goes on (the daemon answers while it drains).
    let stopping = tokio::spawn(d.drain_and_stop(Duration::from_secs(600)));
    let client = common::http::client();
    let view = |id: &String| {
        let (client, url) = (client.clone(), url.clone());
        let id = id.clone();
        async move {
            let j: Value = client
                .get(format!("{url}/v1/jobs/{id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            j
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (a, b) = (view(&ids[1]).await, view(&ids[2]).await);
        if a["state"] == "queued" && b["state"] == "queued" {
            for j in [a, b] {
                assert_eq!(j["attempt"], 0, "the handed-back attempt was counted: {j}");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "held jobs not handed back: {a} {b}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(view(&ids[0]).await["state"], "running");
    let started = std::fs::read_to_string(&log).unwrap();
    assert_eq!(started, "run\n", "a held job reached a worker");
    std::fs::write(&gate, "").unwrap();
    tokio::time::timeout(Duration::from_secs(60), stopping)
        .await
        .expect("the drain never ended")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_daemon_hands_held_jobs_back_instead_of_starting_them() {
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(jobs.join("gate.js"), GATE_JOB).unwrap();
    let toml = "[[pool]]\nname = \"gate\"\njobs = [\"gate\"]\nkind = \"node\"\nmin = 1\nmax = 1\nconcurrency = 1\nclaim_ahead = 2\n";
    let cfg = config(&jobs, &tmp.path().join("data"), toml);
    // The test keeps a handle on the store, to read it once the daemon stopped.
    let store = common::sqlite(&cfg);
    let d = Running::start_with(cfg, std::sync::Arc::clone(&store)).await;
    let (gate, log) = (tmp.path().join("open"), tmp.path().join("started.log"));
    let mut ids = Vec::new();
    for mark in ["run", "held-1", "held-2"] {
        let body = json!({"job": "gate", "params": {"gate": gate, "log": log, "mark": mark}});
        ids.push(submit(&d, body).await);
    }
    until_counts(&d, &ids, (3, 0)).await;
    // Stopped while the first job still runs (the pool's grace ends it): the held jobs must not
    // be started in a pool that is stopping (they would end `dead` as not runnable).
    d.stop_within(Duration::from_millis(200)).await;
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "run\n");
    for id in &ids[1..] {
        let j = store.get(id.parse().unwrap()).await.unwrap();
        assert_eq!(
            (j.state, j.attempt),
            (offload_store::JobState::Queued, 0),
            "{j:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_hands_held_jobs_back_and_a_resume_runs_them() {
    for (path, resume) in [
        ("/v1/pools/gate/pause", "/v1/pools/gate/resume"),
        ("/v1/queues/gate/pause", "/v1/queues/gate/resume"),
    ] {
        let (s, ids) = one_running_two_held().await;
        let (status, v) = post(&s.d, path, json!({})).await;
        assert!((200..300).contains(&status), "{path}: {status} {v}");
        // The held jobs are queued again, uncounted; the running one goes on.
        until_counts(&s.d, &ids, (1, 2)).await;
        for id in &ids[1..] {
            assert_eq!(get(&s.d, &format!("/v1/jobs/{id}")).await.1["attempt"], 0);
        }
        s.open();
        assert_eq!(wait_result(&s.d, &ids[0]).await["state"], "succeeded");
        // Paused: nothing else starts; resumed: the rest run.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(s.started(), ["run"], "{path}");
        let (status, v) = post(&s.d, resume, json!({})).await;
        assert!((200..300).contains(&status), "{resume}: {status} {v}");
        for id in &ids[1..] {
            assert_eq!(wait_result(&s.d, id).await["state"], "succeeded");
        }
        assert_eq!(s.started(), ["run", "held-1", "held-2"], "{path}");
        s.d.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_waiting_ahead_is_cancelled_before_it_runs() {
    let s = start("claim_ahead = 1\n").await;
    let first = s.submit("first").await;
    let ahead = s.submit("ahead").await;
    wait_state(&s.d, &ahead, "running").await;
    let (status, v) = post(&s.d, &format!("/v1/jobs/{ahead}/cancel"), json!({})).await;
    assert!(status == 200 || status == 202, "{status} {v}");
    let r = wait_result(&s.d, &ahead).await;
    assert_eq!(r["state"], "cancelled", "{r}");
    // The slot it waited for is still taken by the first job, which goes on.
    assert_eq!(s.started(), ["first"]);
    s.open();
    let r = wait_result(&s.d, &first).await;
    assert_eq!(r["state"], "succeeded", "{r}");
    // The cancelled job never reached a worker; the next one does.
    let next = s.submit("next").await;
    assert_eq!(wait_result(&s.d, &next).await["state"], "succeeded");
    assert_eq!(s.started(), ["first", "next"]);
    s.d.stop().await;
}

#[test]
fn a_claim_ahead_beyond_the_pool_queue_is_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let toml = "[[pool]]\nname = \"p\"\nmax = 2\nconcurrency = 2\nclaim_ahead = 13\n";
    let e = config_error(tmp.path(), toml);
    assert!(
        e.contains("pool \"p\": claim_ahead 13 is out of range: 0..=12"),
        "{e}"
    );
}

fn config_error(dir: &Path, toml: &str) -> String {
    let mut cfg = offload_server::ServeConfig::new(dir.join("jobs"), dir.join("data"));
    let file: offload_server::FileConfig = toml::from_str(toml).unwrap();
    match cfg.apply_file(file).and_then(|()| cfg.validate()) {
        Ok(()) => panic!("{toml} was accepted"),
        Err(e) => e.to_string(),
    }
}
