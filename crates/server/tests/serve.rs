//! The daemon end to end over HTTP: booted in this process (`common::Running`), real workers,
//! real SQLite, real sockets. That the `offload serve` binary starts, serves and stops on a
//! signal is the CLI's smoke test (`crates/cli/tests/serve_smoke.rs`).

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::http::{client as http, events_until, get, post, submit, wait_result, wait_state};
use common::{config, examples, sqlite, Running};
use serde_json::{json, Value};

/// A daemon on the example jobs with `toml` as its offload.toml and a fresh data folder.
async fn start(toml: &str) -> Running {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&examples(), &tmp.path().join("data"), toml);
    Running::start(tmp, cfg).await
}

#[tokio::test]
async fn a_submitted_job_runs_and_its_result_long_polls() {
    let d = start("").await;
    let id = submit(
        &d,
        json!({"job": "hello", "params": {"name": "serve", "steps": 2}}),
    )
    .await;
    let r = wait_result(&d, &id).await;
    assert_eq!(r["state"], "succeeded", "{r}");
    assert_eq!(r["result"]["greeting"], "Hello, serve!");
    let (_, job) = get(&d, &format!("/v1/jobs/{id}")).await;
    assert_eq!(job["attempts"].as_array().unwrap().len(), 1, "{job}");
    assert_eq!(job["attempts"][0]["outcome"], "succeeded");
    assert_eq!(job["progress"], json!({"done": 2, "total": 2}));
    assert_eq!(job["pool"], "node");
}

#[tokio::test]
async fn bad_input_gets_typed_errors_and_never_crashes_the_daemon() {
    let d = start("").await;
    let (s, v) = post(&d, "/v1/jobs", json!({"job": "no-such-job"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("unknown_job")),
        "{v}"
    );
    let (s, v) = post(&d, "/v1/jobs", json!({"job": "../etc/passwd"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
    let (s, v) = post(&d, "/v1/jobs", json!({"nope": 1})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_json")),
        "{v}"
    );
    let r = http()
        .post(format!("{}/v1/jobs", d.url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let big = "x".repeat(17 << 20);
    let r = http()
        .post(format!("{}/v1/jobs", d.url()))
        .header("content-type", "application/json")
        .body(format!("{{\"job\":\"hello\",\"params\":\"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large");
    let (s, v) = post(
        &d,
        "/v1/cron",
        json!({"name": "c", "cron": "61 * * * *", "job": "hello"}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_cron")),
        "{v}"
    );
    let (s, _) = get(&d, "/v1/jobs/0193d4b2-0000-7000-8000-000000000000").await;
    assert_eq!(s, 404);
    let (s, _) = get(&d, "/v1/jobs/not-a-uuid").await;
    assert_eq!(s, 404);
    let (s, v) = get(&d, "/v1/nothing-here").await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));
    let (s, v) = get(&d, "/v1/jobs?state=bogus").await;
    assert_eq!(s, 400, "{v}");
    // Still serving.
    let (s, _) = get(&d, "/healthz").await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn a_duplicate_idempotency_key_returns_the_first_job() {
    let d = start("").await;
    let body = json!({"job": "hello", "idempotency_key": "order-42"});
    let first = submit(&d, body.clone()).await;
    let (s, v) = post(&d, "/v1/jobs", body).await;
    assert_eq!(s, 200);
    assert_eq!(v["id"], first.as_str());
    assert_eq!(v["duplicate"], true);
}

#[tokio::test]
async fn a_failing_job_is_retried_then_dead_with_every_attempt_recorded() {
    let d = start("").await;
    let id = submit(&d, json!({"job": "fails", "max_attempts": 2})).await;
    let r = wait_result(&d, &id).await;
    assert_eq!(r["state"], "dead", "{r}");
    assert_eq!(r["error"]["name"], "ValueError");
    let (_, job) = get(&d, &format!("/v1/jobs/{id}")).await;
    let attempts = job["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{job}");
    assert!(attempts.iter().all(|a| a["outcome"] == "failed"));
    // A dead job can be retried.
    let (s, v) = post(&d, &format!("/v1/jobs/{id}/retry"), json!(null)).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("queued")), "{v}");
    let (s, _) = post(&d, &format!("/v1/jobs/{id}/retry"), json!(null)).await;
    assert_eq!(s, 409);
}

#[tokio::test]
async fn cancel_kills_a_running_job() {
    let d = start("").await;
    let id = submit(
        &d,
        json!({"job": "primes", "params": {"limit": 400_000_000}}),
    )
    .await;
    wait_state(&d, &id, "running").await;
    let (s, v) = post(&d, &format!("/v1/jobs/{id}/cancel"), json!(null)).await;
    assert_eq!(s, 200);
    assert_eq!(v["state"], "cancelled", "{v}");
    let r = wait_result(&d, &id).await;
    assert_eq!(r["state"], "cancelled");
    // A queued job is cancelled at once.
    let later = submit(&d, json!({"job": "hello", "delay_ms": 60_000})).await;
    let (_, v) = post(&d, &format!("/v1/jobs/{later}/cancel"), json!(null)).await;
    assert_eq!(v["state"], "cancelled");
}

#[tokio::test]
async fn events_stream_state_changes_and_progress() {
    let d = start("").await;
    let id = submit(
        &d,
        json!({"job": "hello", "params": {"steps": 3}, "delay_ms": 300}),
    )
    .await;
    let mut resp = http()
        .get(format!("{}/v1/events?id={id}", d.url()))
        .send()
        .await
        .unwrap();
    let text = events_until(&mut resp, "\"state\":\"succeeded\"").await;
    assert!(text.contains("event: job"), "{text}");
    assert!(text.contains("\"state\":\"running\""), "{text}");
    assert!(text.contains("event: progress"), "{text}");
}

#[tokio::test]
async fn batch_workers_pools_metrics_and_openapi() {
    let d = start("").await;
    let (s, v) = post(
        &d,
        "/v1/jobs/batch",
        json!({"jobs": [{"job": "hello"}, {"job": "images/thumbnail", "params": {"width": 800, "height": 600}}]}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let ids: Vec<String> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect();
    for id in &ids {
        assert_eq!(wait_result(&d, id).await["state"], "succeeded");
    }
    let (_, pools) = get(&d, "/v1/pools").await;
    let names: HashSet<&str> = pools["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains("node") && names.contains("python"),
        "{pools}"
    );
    let (_, workers) = get(&d, "/v1/workers").await;
    assert!(
        !workers["workers"].as_array().unwrap().is_empty(),
        "{workers}"
    );
    let (s, v) = post(&d, "/v1/pools/node/resize", json!({"size": 2})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(&d, "/v1/pools/nope/resize", json!({"size": 2})).await;
    assert_eq!(s, 404, "{v}");
    let metrics = http()
        .get(format!("{}/metrics", d.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("offload_jobs_submitted_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("offload_jobs{pool=\"node\",state=\"succeeded\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("offload_job_run_seconds_bucket"),
        "{metrics}"
    );
    let (s, doc) = get(&d, "/v1/openapi.json").await;
    assert_eq!(s, 200);
    // Every documented route answers with something other than 404/405 for its method.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if path == "/v1/events" {
                continue; // a stream; covered above
            }
            let url = format!(
                "{}{}",
                d.url(),
                path.replace("{id}", &ids[0]).replace("{name}", "node")
            );
            let req = match method.as_str() {
                "get" => http().get(&url),
                "post" => http().post(&url).json(&json!({})),
                "delete" => http().delete(&url),
                other => panic!("{other}"),
            };
            let status = req.send().await.unwrap().status().as_u16();
            assert!(status != 405, "{method} {path} -> {status}");
        }
    }
}

#[tokio::test]
async fn cron_schedules_fire_from_the_api() {
    // Every second is below the default minimum interval (60 s): allow it.
    let d = start("[limits]\nmin_cron_interval_ms = 1000\n").await;
    let (s, v) = post(
        &d,
        "/v1/cron",
        json!({"name": "every-second", "cron": "* * * * * *", "job": "cleanup", "params": {"older_than_days": 1}}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = get(&d, "/v1/jobs?job=cleanup&state=succeeded").await;
        if page["jobs"].as_array().unwrap().len() >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the schedule did not fire twice: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, list) = get(&d, "/v1/cron").await;
    assert_eq!(list["schedules"][0]["name"], "every-second");
    assert_eq!(list["schedules"][0]["source"], "api");
    let r = http()
        .delete(format!("{}/v1/cron/every-second", d.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (s, _) = get(&d, "/v1/cron").await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn a_token_is_required_when_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(&examples(), &tmp.path().join("data"), "");
    cfg.token = Some("s3cret".into());
    let d = Running::start(tmp, cfg).await;
    let (s, v) = get(&d, "/v1/jobs").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let r = http()
        .get(format!("{}/v1/jobs", d.url()))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, _) = get(&d, "/healthz").await;
    assert_eq!(s, 200);
}

fn write_job(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).unwrap();
}

/// What SIGKILL does to the binary, in-process: the daemon's runtime is dropped with every task
/// in it and no stop runs (`Running::crash`); a new daemon on the same data folder finishes the
/// work.
#[tokio::test]
async fn sigkill_of_the_daemon_mid_load_loses_no_accepted_job() {
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    write_job(
        &jobs,
        "work.js",
        "module.exports = async (p) => { await new Promise(r => setTimeout(r, 5)); return p.n; };",
    );
    let data = tmp.path().join("data");
    let cfg = config(&jobs, &data, "");
    let store = sqlite(&cfg);
    let d = Running::boot_async(cfg, store).await;
    let mut accepted = Vec::new();
    for round in 0..20 {
        let batch: Vec<Value> = (0..20)
            .map(|i| json!({"job": "work", "params": {"n": round * 20 + i}}))
            .collect();
        let (s, v) = post(&d, "/v1/jobs/batch", json!({ "jobs": batch })).await;
        assert_eq!(s, 201, "{v}");
        for j in v["jobs"].as_array().unwrap() {
            accepted.push(j["id"].as_str().unwrap().to_owned());
        }
        if round == 10 {
            // Some jobs are done, some running, most queued: kill it here.
            break;
        }
    }
    d.crash();
    let cfg = config(&jobs, &data, "");
    let store = sqlite(&cfg);
    let d = Running::start_with(cfg, store).await;
    for id in &accepted {
        let r = wait_result(&d, id).await;
        assert_eq!(r["state"], "succeeded", "{id}: {r}");
    }
    let (_, page) = get(&d, "/v1/jobs?limit=1000").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), accepted.len());
}

#[tokio::test]
async fn editing_a_job_file_takes_effect_and_removing_it_makes_it_unknown() {
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    write_job(&jobs, "version.js", "module.exports = () => 1;");
    let cfg = config(&jobs, &tmp.path().join("data"), "");
    let d = Running::start(tmp, cfg).await;
    let id = submit(&d, json!({"job": "version"})).await;
    assert_eq!(wait_result(&d, &id).await["result"], 1);
    write_job(&jobs, "version.js", "module.exports = () => 2;");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let id = submit(&d, json!({"job": "version"})).await;
        if wait_result(&d, &id).await["result"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the edit never took effect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::remove_file(jobs.join("version.js")).unwrap();
    let (s, v) = post(&d, "/v1/jobs", json!({"job": "version"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("unknown_job")),
        "{v}"
    );
}
