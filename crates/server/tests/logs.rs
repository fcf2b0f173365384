//! Per-attempt job logs end to end (`GET /v1/jobs/{id}/logs`): a fresh process's stdout and
//! stderr, the cut over `max_log_bytes_per_attempt` with its marker, each attempt's log kept
//! apart (across manual retries too, numbered on, the oldest cut by
//! `max_log_attempts_per_job`), a pool worker's lines on the job it ran (on both, marked shared, when it ran two at
//! once), the dashboard's region, the refusals, and the logs gone with a
//! deleted job. Each waits for the job's end: its lines are stored before its end is recorded.

mod common;

use std::path::PathBuf;

use common::http::{get, submit, wait_result};
use common::{config, sqlite, Running};
use offload_store::{JobId, LogQuery};
use serde_json::{json, Value};

const TOML: &str = r#"
[limits]
max_log_bytes_per_attempt = 2048
max_log_attempts_per_job = 3

[[pool]]
name = "proc"
jobs = ["proc/*"]
kind = "node"
isolation = "process"
max = 2

[[pool]]
name = "pair"
jobs = ["gate"]
kind = "node"
max = 1
concurrency = 2

[[pool]]
name = "node"
kind = "node"
max = 1
"#;

fn jobs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs")
}

/// The lines of a page, as (attempt, stream, text, cut).
fn lines(page: &Value) -> Vec<(u64, String, String, bool)> {
    page["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["attempt"].as_u64().unwrap(),
                l["stream"].as_str().unwrap().to_owned(),
                l["line"].as_str().unwrap().trim_end().to_owned(),
                l["cut"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn logs(d: &Running, id: &str, query: &str) -> (u16, Value) {
    get(d, &format!("/v1/jobs/{id}/logs{query}")).await
}

#[tokio::test]
async fn a_process_job_keeps_stdout_and_stderr_and_marks_the_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&jobs(), tmp.path(), TOML);
    let d = Running::start_with(cfg.clone(), sqlite(&cfg)).await;

    let id = submit(&d, json!({"job": "proc/chatty", "params": {"tag": "p"}})).await;
    assert_eq!(wait_result(&d, &id).await["state"], "succeeded");
    let (s, page) = logs(&d, &id, "").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["attempts"], 1, "{page}");
    assert_eq!(page["active"], false, "{page}");
    assert_eq!(
        lines(&page),
        [
            (1, "stdout".into(), "p out 0".into(), false),
            (1, "stderr".into(), "p err".into(), false),
        ]
    );
    assert!(page["next_cursor"].is_null(), "{page}");

    // 100 lines of ~60 bytes over a 2 KiB limit: the first ones, then the marker.
    let id = submit(
        &d,
        json!({"job": "proc/chatty", "params": {"tag": "big", "lines": 100, "width": 50}}),
    )
    .await;
    assert_eq!(wait_result(&d, &id).await["state"], "succeeded");
    let (_, page) = logs(&d, &id, "").await;
    let got = lines(&page);
    let kept: usize = got.iter().filter(|l| !l.3).map(|l| l.2.len() + 1).sum();
    assert!(kept <= 2048, "{kept} bytes kept");
    assert!(got.len() > 20, "{page}");
    assert_eq!(got[0].2, format!("big out 0 {}", "x".repeat(50)));
    let last = got.last().unwrap();
    assert!(last.3, "the last line is the cut marker: {page}");
    assert!(
        last.2.contains("dropped") && last.2.contains("max_log_bytes_per_attempt = 2048"),
        "{}",
        last.2
    );
    assert_eq!(got.iter().filter(|l| l.3).count(), 1);

    // Pages: two lines, then on from the cursor.
    let (_, first) = logs(&d, &id, "?limit=2").await;
    assert_eq!(lines(&first).len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(cursor, "1.1");
    let (_, rest) = logs(&d, &id, &format!("?cursor={cursor}&limit=10000")).await;
    assert_eq!(lines(&rest), got[2..]);
    d.stop().await;
}

#[tokio::test]
async fn each_attempt_keeps_its_own_log() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&jobs(), tmp.path(), TOML);
    let d = Running::start_with(cfg.clone(), sqlite(&cfg)).await;
    let id = submit(
        &d,
        json!({"job": "proc/chatty", "params": {"tag": "t", "fail": true},
               "max_attempts": 2, "backoff": {"kind": "fixed", "delay_ms": 0}}),
    )
    .await;
    assert_eq!(wait_result(&d, &id).await["state"], "dead");
    let (_, page) = logs(&d, &id, "").await;
    assert_eq!(page["attempts"], 2, "{page}");
    let want = |a| {
        vec![
            (a, "stdout".to_owned(), "t out 0".to_owned(), false),
            (a, "stderr".to_owned(), "t err".to_owned(), false),
        ]
    };
    let got = lines(&page);
    assert_eq!(got, [want(1), want(2)].concat());
    let (_, one) = logs(&d, &id, "?attempt=1").await;
    assert_eq!(lines(&one), want(1));
    let (_, two) = logs(&d, &id, "?attempt=2").await;
    assert_eq!(lines(&two), want(2));

    // Retried by hand twice: attempts 3 and 4, then 5 and 6, each with its own log; the job
    // lists every attempt. The second retry (after attempt 4) keeps the logs of the last 3
    // attempts (`max_log_attempts_per_job = 3`): attempt 1's go; 5 and 6 come after.
    for round in [3, 5] {
        let (s, v) = d.http("POST", &format!("/v1/jobs/{id}/retry"), None).await;
        assert_eq!((s, v["state"].as_str()), (200, Some("queued")), "{v}");
        assert_eq!(wait_result(&d, &id).await["state"], "dead");
        let (_, page) = logs(&d, &id, &format!("?attempt={round}")).await;
        assert_eq!(lines(&page), want(round), "{page}");
    }
    let (_, page) = logs(&d, &id, "").await;
    assert_eq!(page["attempts"], 6, "{page}");
    assert_eq!(
        lines(&page),
        [want(2), want(3), want(4), want(5), want(6)].concat(),
        "{page}"
    );
    let (_, one) = logs(&d, &id, "?attempt=1").await;
    assert!(lines(&one).is_empty(), "{one}");
    let (_, job) = get(&d, &format!("/v1/jobs/{id}")).await;
    let attempts = job["attempts"].as_array().unwrap();
    let numbers: Vec<u64> = attempts
        .iter()
        .map(|a| a["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5, 6], "{job}");
    for a in attempts {
        assert_eq!(a["outcome"], "failed", "{job}");
        assert!(a["node"].is_string(), "{job}");
        assert!(a["pid"].as_u64().is_some_and(|p| p > 0), "{job}");
        assert!(a["ended_at"].as_i64() >= a["started_at"].as_i64(), "{job}");
    }
    assert_eq!(
        (job["attempt"].as_u64(), job["max_attempts"].as_u64()),
        (Some(6), Some(6))
    );
    d.stop().await;
}

#[tokio::test]
async fn a_pool_workers_lines_land_on_the_job_it_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&jobs(), tmp.path(), TOML);
    let d = Running::start_with(cfg.clone(), sqlite(&cfg)).await;
    // One worker (max = 1, concurrency 1): the jobs run on it one after the other.
    let a = submit(&d, json!({"job": "chatty", "params": {"tag": "a"}})).await;
    assert_eq!(wait_result(&d, &a).await["state"], "succeeded");
    let b = submit(
        &d,
        json!({"job": "chatty", "params": {"tag": "b", "lines": 2}}),
    )
    .await;
    assert_eq!(wait_result(&d, &b).await["state"], "succeeded");
    let (_, pa) = logs(&d, &a, "").await;
    assert_eq!(
        lines(&pa),
        [
            (1, "stdout".into(), "a out 0".into(), false),
            (1, "stderr".into(), "a err".into(), false),
        ],
        "{pa}"
    );
    let (_, pb) = logs(&d, &b, "").await;
    assert_eq!(
        lines(&pb),
        [
            (1, "stdout".into(), "b out 0".into(), false),
            (1, "stdout".into(), "b out 1".into(), false),
            (1, "stderr".into(), "b err".into(), false),
        ],
        "{pb}"
    );
    assert!(pb["lines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["shared"] == false));
    d.stop().await;
}

#[tokio::test]
async fn a_line_of_a_worker_running_two_jobs_is_stored_with_both_marked_shared() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&jobs(), &tmp.path().join("data"), TOML);
    let d = Running::start_with(cfg.clone(), sqlite(&cfg)).await;
    let dir = tmp.path().to_str().unwrap();
    // One worker, two jobs at once: each reports progress once it runs on the worker.
    let a = submit(
        &d,
        json!({"job": "gate", "params": {"tag": "a", "dir": dir}}),
    )
    .await;
    let b = submit(
        &d,
        json!({"job": "gate", "params": {"tag": "b", "dir": dir}}),
    )
    .await;
    for id in [&a, &b] {
        wait_progress(&d, id).await;
    }
    std::fs::write(tmp.path().join("go"), "").unwrap();
    // Both print while both run: each line is stored with each job.
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    for id in [&a, &b] {
        loop {
            let (_, page) = logs(&d, id, "").await;
            if page["lines"].as_array().unwrap().len() == 2 {
                let mut got: Vec<_> = page["lines"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| {
                        (
                            l["line"].as_str().unwrap().to_owned(),
                            l["shared"].as_bool().unwrap(),
                        )
                    })
                    .collect();
                got.sort();
                assert_eq!(
                    got,
                    [("go a".to_owned(), true), ("go b".to_owned(), true)],
                    "{page}"
                );
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{page}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    std::fs::write(tmp.path().join("done"), "").unwrap();
    assert_eq!(wait_result(&d, &a).await["state"], "succeeded");
    assert_eq!(wait_result(&d, &b).await["state"], "succeeded");
    d.stop().await;
}

/// Polls a job until it reported progress (it runs on its worker).
async fn wait_progress(d: &Running, id: &str) {
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    loop {
        let (_, job) = get(d, &format!("/v1/jobs/{id}")).await;
        if !job["progress"].is_null() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{job}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn refusals_and_a_deleted_jobs_logs_are_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&jobs(), tmp.path(), TOML);
    let store = sqlite(&cfg);
    let d = Running::start_with(cfg, store.clone()).await;
    let id = submit(&d, json!({"job": "proc/chatty", "params": {"tag": "gone"}})).await;
    assert_eq!(wait_result(&d, &id).await["state"], "succeeded");

    let unknown = JobId::now_v7();
    let (s, v) = logs(&d, &unknown.to_string(), "").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );
    let (s, v) = logs(&d, "not-a-uuid", "").await;
    assert_eq!(s, 404, "{v}");
    // An attempt the job does not have: not found, like an unknown job.
    let (s, v) = logs(&d, &id, "?attempt=2").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("attempt 2 is out of range: the job has 1 attempt(s) so far"),
        "{v}"
    );
    for (q, needle) in [
        ("?attempt=0", "attempt 0 is out of range"),
        ("?attempt=x", "query string"),
        ("?limit=0", "limit 0"),
        ("?limit=10001", "limit 10001"),
        ("?cursor=x", "cursor"),
    ] {
        let (s, v) = logs(&d, &id, q).await;
        assert_eq!(s, 400, "{q}: {v}");
        assert_eq!(v["error"]["code"], "invalid_request", "{q}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{q}: {v}"
        );
    }

    let job: JobId = id.parse().unwrap();
    let all = LogQuery {
        attempt: None,
        after: None,
        limit: 100,
    };
    assert_eq!(store.logs(job, all).await.unwrap().len(), 2);
    let (s, v) = d.http("DELETE", &format!("/v1/jobs/{id}"), None).await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = logs(&d, &id, "").await;
    assert_eq!(s, 404);
    assert!(store.logs(job, all).await.unwrap().is_empty());
    d.stop().await;
}

/// A dashboard page (`hx` for htmx's partial): status and text.
async fn page(d: &Running, path: &str, hx: bool) -> (u16, String) {
    let mut req = common::http::client().get(format!("{}{path}", d.url()));
    if hx {
        req = req.header("hx-request", "true");
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_dashboard_shows_each_attempts_logs_escaped_with_the_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&jobs(), tmp.path(), TOML);
    let d = Running::start_with(cfg.clone(), sqlite(&cfg)).await;
    let id = submit(
        &d,
        json!({"job": "proc/chatty", "params": {"tag": "<b>&", "lines": 100, "width": 50}}),
    )
    .await;
    assert_eq!(wait_result(&d, &id).await["state"], "succeeded");

    // The job's page holds a region per attempt that loads itself.
    let (s, html) = page(&d, &format!("/ui/jobs/{id}"), false).await;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains("id=\"logs-h\""), "{html}");
    let region = format!("hx-get=\"/ui/jobs/{id}/attempts/1/logs\"");
    assert!(html.contains(&region), "{html}");

    // The region: escaped lines, stderr marked, the cut marker, no polling once over.
    let (s, html) = page(&d, &format!("/ui/jobs/{id}/attempts/1/logs"), true).await;
    assert_eq!(s, 200, "{html}");
    assert!(!html.contains("<html"), "a partial: {html}");
    assert!(html.contains("&lt;b&gt;&amp; out 0 xxxx"), "{html}");
    assert!(!html.contains("<b>&"), "{html}");
    assert!(html.contains("class=\"cut\""), "{html}");
    assert!(html.contains("max_log_bytes_per_attempt = 2048"), "{html}");
    assert!(!html.contains("every 2s"), "{html}");

    // Opened directly: a whole page. Refusals: a page saying why.
    let (s, html) = page(&d, &format!("/ui/jobs/{id}/attempts/1/logs"), false).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("<html") && html.contains("Output of attempt 1"),
        "{html}"
    );
    let (s, html) = page(&d, &format!("/ui/jobs/{id}/attempts/3/logs"), true).await;
    assert_eq!(s, 404, "{html}");
    assert!(html.contains("attempt 3 is out of range"), "{html}");
    let unknown = JobId::now_v7();
    let (s, _) = page(&d, &format!("/ui/jobs/{unknown}/attempts/1/logs"), true).await;
    assert_eq!(s, 404);

    // A short job: stdout and stderr lines, stderr marked.
    let id = submit(
        &d,
        json!({"job": "proc/chatty", "params": {"tag": "small"}}),
    )
    .await;
    assert_eq!(wait_result(&d, &id).await["state"], "succeeded");
    let (_, html) = page(&d, &format!("/ui/jobs/{id}/attempts/1/logs"), true).await;
    assert!(
        html.contains("<span class=\"stdout\">small out 0"),
        "{html}"
    );
    assert!(html.contains("<span class=\"stderr\">small err"), "{html}");
    d.stop().await;
}
