//! The client subcommands (`submit`, `status`, `result`, `cancel`, `retry`, `jobs`, `workers`,
//! `cron list`) end to end: the real `offload` binary against a real `offload serve`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cli::{self, Out};
use common::{repo_root, Daemon};
use serde_json::Value;

/// `offload --server SERVER ARGS`, the environment cleared of `OFFLOAD_*`.
fn command(server: &str, args: &[&str]) -> Command {
    cli::command(Some(server), args)
}

fn offload(server: &str, args: &[&str]) -> Out {
    cli::offload(Some(server), args)
}

/// Runs `offload` and expects exit 0.
fn ok(server: &str, args: &[&str]) -> String {
    let out = offload(server, args);
    assert_eq!(out.code, 0, "offload {args:?}: {out:?}");
    out.stdout
}

fn examples() -> std::path::PathBuf {
    repo_root().join("examples/jobs")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

/// Polls `status --json` until the job is in `state`.
fn wait_state(server: &str, id: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = json(&ok(server, &["status", id, "--json"]));
        if job["state"] == state {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} never got {state}: {job}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn submit_wait_prints_the_result_and_exits_by_outcome() {
    let d = Daemon::start(&examples());
    let s = d.url.as_str();

    // Success: the result on stdout, exit 0.
    let out = offload(
        s,
        &[
            "submit",
            "hello",
            "--params",
            r#"{"name": "cli", "steps": 2}"#,
            "--wait",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(json(&out.stdout)["greeting"], "Hello, cli!");

    // Failure: the error on stderr, exit 1.
    let out = offload(s, &["submit", "fails", "--retries", "0", "--wait"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        out.stderr
            .contains("offload: job fails failed: ValueError: step 1 of 3"),
        "{out:?}"
    );

    // --json: the whole outcome on one line.
    let out = offload(s, &["submit", "hello", "--wait", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let o = json(&out.stdout);
    assert_eq!(
        (o["state"].as_str(), o["error"].is_null()),
        (Some("succeeded"), true),
        "{o}"
    );

    // A timeout: exit 3.
    let out = offload(
        s,
        &[
            "submit",
            "primes",
            "--params",
            r#"{"limit": 500000000}"#,
            "--timeout",
            "300ms",
            "--retries",
            "0",
            "--wait",
        ],
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("TimedOut"), "{out:?}");

    // Bad usage: exit 2 with the daemon's explanation.
    let out = offload(s, &["submit", "no-such-job"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains(r#"no job "no-such-job""#), "{out:?}");
    assert!(out.stderr.contains("(404 unknown_job)"), "{out:?}");
    let out = offload(s, &["submit", "hello", "--params", "{oops"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("params are not valid JSON"), "{out:?}");

    // An idempotency key: the second submit returns the first job.
    let first = ok(s, &["submit", "hello", "--key", "order-42"]);
    let again = offload(s, &["submit", "hello", "--key", "order-42"]);
    assert_eq!((again.code, &again.stdout), (0, &first), "{again:?}");
    assert!(again.stderr.contains("already submitted"), "{again:?}");
}

#[test]
fn status_result_retry_and_jobs_show_a_failed_job() {
    let d = Daemon::start(&examples());
    let s = d.url.as_str();
    let hello = ok(s, &["submit", "hello", "--params", r#"{"steps": 1}"#])
        .trim()
        .to_owned();
    let id = ok(s, &["submit", "fails", "--retries", "1"])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 36, "an id: {id}");

    // `result --wait`: the error, exit 1.
    let out = offload(s, &["result", &id, "--wait"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("offload: job {id} failed: ValueError")),
        "{out:?}"
    );
    let out = offload(s, &["result", &hello, "--wait", "30"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(json(&out.stdout)["greeting"], "Hello, world!");

    // `status`: state, attempts with outcome and pid, progress, error.
    let text = ok(s, &["status", &id]);
    assert!(text.contains(&format!("id        {id}\n")), "{text}");
    assert!(text.contains("job       fails (pool python)\n"), "{text}");
    assert!(text.contains("state     dead\n"), "{text}");
    assert!(text.contains("attempt   2 of 2\n"), "{text}");
    assert!(
        text.contains("progress  {\"done\":1,\"total\":3} (33%)\n"),
        "{text}"
    );
    assert!(text.contains("error     ValueError: step 1 of 3"), "{text}");
    assert!(text.contains("  #  OUTCOME  "), "{text}");
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  1  ") || l.starts_with("  2  "))
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows.iter()
            .all(|r| r.contains("failed") && r.contains("ValueError")),
        "{text}"
    );
    let job = json(&ok(s, &["status", &id, "--json"]));
    let attempts = job["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{job}");
    assert!(
        attempts.iter().all(|a| a["pid"].as_u64().is_some()),
        "{job}"
    );

    // `jobs`: JSON lines when stdout is not a terminal, a table with --table.
    let lines = ok(s, &["jobs"]);
    let listed: Vec<Value> = lines.lines().map(json).collect();
    assert_eq!(listed.len(), 2, "{lines}");
    assert_eq!(listed[0]["id"], id.as_str(), "newest first: {lines}");
    assert_eq!(listed[1]["id"], hello.as_str(), "{lines}");
    let dead = ok(s, &["jobs", "--state", "dead", "--json"]);
    assert_eq!(dead.lines().count(), 1, "{dead}");
    let table = ok(s, &["jobs", "--table"]);
    let rows: Vec<&str> = table.lines().collect();
    assert!(
        rows[0].starts_with("ID  ") && rows[0].contains("  STATE  "),
        "{table}"
    );
    assert!(
        rows[1].starts_with(&format!("{id}  fails  dead ")),
        "{table}"
    );
    assert!(
        rows[2].starts_with(&format!("{hello}  hello  succeeded  1/3 ")),
        "{table}"
    );
    let only = ok(s, &["jobs", "--job", "hello", "--limit", "5", "--json"]);
    assert_eq!(only.lines().count(), 1, "{only}");
    let out = offload(s, &["jobs", "--state", "bogus"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("bogus"), "{out:?}");

    // `retry`: dead → queued; a job that is not dead → conflict, exit 2.
    assert_eq!(ok(s, &["retry", &id]), format!("{id} queued\n"));
    let out = offload(s, &["retry", &id]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("409 conflict"), "{out:?}");

    // Unknown ids.
    let out = offload(s, &["status", "0193aaaa-0000-7000-8000-000000000000"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("404 not_found"), "{out:?}");
}

#[test]
fn cancel_stops_a_running_job_and_a_waiting_client_exits_8() {
    let d = Daemon::start(&examples());
    let s = d.url.as_str();
    let id = ok(
        s,
        &["submit", "primes", "--params", r#"{"limit": 500000000}"#],
    )
    .trim()
    .to_owned();
    wait_state(s, &id, "running");

    // Not over: exit 9, with and without a short wait.
    let out = offload(s, &["result", &id]);
    assert_eq!(out.code, 9, "{out:?}");
    assert!(out.stderr.contains("is not over yet: running"), "{out:?}");
    let out = offload(s, &["result", &id, "--wait", "0.3"]);
    assert_eq!(out.code, 9, "{out:?}");

    // A client waiting for it sees the cancel.
    let waiting = command(s, &["result", &id, "--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = ok(s, &["cancel", &id]);
    assert!(
        out == format!("{id} cancelled\n") || out.starts_with(&format!("{id} running")),
        "{out}"
    );
    let waited = waiting.wait_with_output().unwrap();
    assert_eq!(waited.status.code(), Some(8), "{waited:?}");
    assert!(
        String::from_utf8_lossy(&waited.stderr).contains("was cancelled"),
        "{waited:?}"
    );
    let out = offload(s, &["result", &id]);
    assert_eq!(out.code, 8, "{out:?}");

    // A delayed job is scheduled, then cancelled at once.
    let later = ok(
        s,
        &["submit", "hello", "--delay", "60s", "--priority", "-3"],
    )
    .trim()
    .to_owned();
    let text = ok(s, &["status", &later]);
    assert!(text.contains("state     scheduled\n"), "{text}");
    assert!(
        text.contains("runs at   ") && text.contains("(in 5"),
        "{text}"
    );
    assert!(text.contains("priority  -3\n"), "{text}");
    assert_eq!(ok(s, &["cancel", &later]), format!("{later} cancelled\n"));
    let text = ok(s, &["status", &later]);
    assert!(text.contains("state     cancelled\n"), "{text}");
}

#[test]
fn workers_and_cron_list_show_the_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("offload.toml");
    std::fs::write(
        &config,
        "[[cron]]\nname = \"nightly\"\ncron = \"0 3 * * *\"\njob = \"cleanup\"\nparams = { older_than_days = 7 }\n",
    )
    .unwrap();
    let d = Daemon::start_with(
        &examples(),
        &tmp.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let s = d.url.as_str();
    ok(s, &["submit", "hello", "--wait"]);

    let table = ok(s, &["workers"]);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>(),
        [
            "PID", "POOL", "STATE", "RSS", "MiB", "HEAP", "MiB", "CPU%", "DONE", "IN", "FLIGHT",
            "RESTARTS", "UPTIME"
        ],
        "{table}"
    );
    let node: Vec<&str> = rows
        .iter()
        .find(|r| r.contains(" node "))
        .unwrap_or_else(|| panic!("no node worker: {table}"))
        .split_whitespace()
        .collect();
    assert!(node[0].parse::<u32>().is_ok(), "{table}");
    assert_eq!(node[2], "ready", "{table}");
    // RSS and CPU come from the pool's periodic /proc sample: 0.0 until the first one.
    assert!(
        node[3].parse::<f64>().is_ok_and(|m| m >= 0.0),
        "RSS in MiB: {table}"
    );
    // The heap comes with the first pong: `-` until then.
    assert!(
        node[4] == "-" || node[4].parse::<f64>().is_ok_and(|m| m > 0.0),
        "heap in MiB: {table}"
    );
    assert_eq!(node[6], "1", "one job done: {table}");
    let workers: Vec<Value> = ok(s, &["workers", "--json"]).lines().map(json).collect();
    assert!(
        workers
            .iter()
            .any(|w| w["pool"] == "node" && w["jobs_done"] == 1),
        "{workers:?}"
    );

    let table = ok(s, &["cron", "list"]);
    let rows: Vec<&str> = table.lines().collect();
    assert!(
        rows[0].starts_with("NAME     CRON       JOB      NEXT "),
        "{table}"
    );
    assert!(
        rows[1].starts_with("nightly  0 3 * * *  cleanup  "),
        "{table}"
    );
    assert!(
        rows[1].contains("  skip    config  {\"older_than_days\":7}"),
        "{table}"
    );
    let list: Vec<Value> = ok(s, &["cron", "list", "--json"])
        .lines()
        .map(json)
        .collect();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0]["name"].as_str(), list[0]["source"].as_str()),
        (Some("nightly"), Some("config"))
    );
}

#[test]
fn broadcast_and_workers_kill_reach_the_pools_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(&examples(), &tmp.path().join("data"), &[]);
    let s = d.url.as_str();
    ok(s, &["submit", "hello", "--wait"]);
    let workers: Vec<Value> = ok(s, &["workers", "--json"]).lines().map(json).collect();
    let pid = workers
        .iter()
        .find(|w| w["pool"] == "node")
        .and_then(|w| w["pid"].as_u64())
        .unwrap_or_else(|| panic!("no node worker: {workers:?}"));
    let table = ok(
        s,
        &["broadcast", "node", "config-changed", "--data", "{\"a\":1}"],
    );
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [vec!["PID", "ACKED"], vec![&pid.to_string(), "yes"]],
        "{table}"
    );
    let out = offload(s, &["broadcast", "nope", "x"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no pool"), "{out:?}");
    let out = offload(s, &["broadcast", "node", "x", "--data", "{not json"]);
    assert_eq!(out.code, 2, "{out:?}");
    let out = offload(s, &["workers", "kill", "node", "1"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no worker with pid 1"), "{out:?}");
    let text = ok(
        s,
        &[
            "workers",
            "kill",
            "node",
            &pid.to_string(),
            "--hard",
            "--grace-ms",
            "0",
        ],
    );
    assert_eq!(
        text,
        format!("worker {pid} of pool node is being killed (hard, grace 0 ms)\n")
    );
    let start = std::time::Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| !st.contains(") Z "))
    {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "{pid} lives on"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn tokens_and_unreachable_daemons_get_clear_errors() {
    let out = offload("http://127.0.0.1:1", &["jobs"]);
    assert_eq!(out.code, 7, "{out:?}");
    assert!(
        out.stderr
            .contains("is `offload serve` running at http://127.0.0.1:1?"),
        "{out:?}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(
        &examples(),
        &tmp.path().join("data"),
        &["--token", "s3cret"],
    );
    let s = d.url.as_str();
    let out = offload(s, &["jobs"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("(401 unauthorized)"), "{out:?}");
    assert!(
        out.stderr
            .contains("pass the daemon's token with --token or OFFLOAD_TOKEN"),
        "{out:?}"
    );
    let out = offload(s, &["--token", "wrong", "submit", "hello"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("the daemon refused this token"),
        "{out:?}"
    );
    let out = command(s, &["submit", "hello", "--wait"])
        .env("OFFLOAD_TOKEN", "s3cret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        json(&String::from_utf8_lossy(&out.stdout))["greeting"],
        "Hello, world!"
    );
    assert_eq!(
        ok(s, &["jobs", "--token", "s3cret", "--json"])
            .lines()
            .count(),
        1
    );
}

#[test]
fn logs_prints_what_a_job_printed_and_follows_a_running_one() {
    let d = Daemon::start(&examples());
    let s = d.url.as_str();
    let id = ok(s, &["submit", "hello", "--params", r#"{"steps": 1}"#])
        .trim()
        .to_owned();
    ok(s, &["result", &id, "--wait", "30"]);
    // `hello` prints one line to stdout.
    let out = offload(s, &["logs", &id]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "greeted world\n", ""),
        "{out:?}"
    );
    let line = json(&ok(s, &["logs", &id, "--json", "--attempt", "1"]));
    assert_eq!(
        (
            &line["attempt"],
            &line["stream"],
            &line["line"],
            &line["cut"]
        ),
        (
            &1.into(),
            &"stdout".into(),
            &"greeted world".into(),
            &false.into()
        ),
        "{line}"
    );
    // Over: `--follow` prints what there is and ends.
    assert_eq!(ok(s, &["logs", &id, "--follow"]), "greeted world\n");

    // Running: `--follow` waits for its lines and ends with the job.
    let running = ok(
        s,
        &[
            "submit",
            "hello",
            "--params",
            r#"{"steps": 25, "name": "later"}"#,
        ],
    )
    .trim()
    .to_owned();
    let out = offload(s, &["logs", &running, "--follow"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "greeted later\n"),
        "{out:?}"
    );
    let job = json(&ok(s, &["status", &running, "--json"]));
    assert_eq!(job["state"], "succeeded", "{job}");

    // Refusals: an attempt the job does not have, an unknown job.
    let out = offload(s, &["logs", &id, "--attempt", "2"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("attempt 2 is out of range"), "{out:?}");
    let out = offload(s, &["logs", "0193aaaa-0000-7000-8000-000000000000"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("404 not_found"), "{out:?}");
}

#[test]
fn stats_shows_the_history_of_jobs_that_ran() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("offload.toml");
    std::fs::write(&config, "[history]\nflush_ms = 100\n").unwrap();
    let d = Daemon::start_with(
        &examples(),
        &tmp.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let s = d.url.as_str();
    for name in ["a", "b"] {
        let params = format!(r#"{{"name": "{name}", "steps": 1}}"#);
        ok(s, &["submit", "hello", "--params", &params, "--wait"]);
    }
    // The daemon adds its counts every 100 ms: poll until both runs are in.
    let deadline = Instant::now() + Duration::from_secs(60);
    let series = loop {
        let v = json(&ok(s, &["stats", "--job", "hello", "--json"]));
        let succeeded: u64 = v["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["succeeded"].as_u64().unwrap())
            .sum();
        if succeeded == 2 {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "the history never got both runs: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(series["job"], "hello");
    assert_eq!(series["step"], "minute");

    let table = ok(s, &["stats", "--job", "hello", "--since", "2h"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("TIME "), "{table}");
    assert!(lines[0].contains("RUN P95"), "{table}");
    let total: Vec<&str> = lines.last().unwrap().split_whitespace().collect();
    assert_eq!(total[..6], ["total", "2", "2", "0", "0", "0"], "{table}");

    let none = ok(s, &["stats", "--job", "nothing-ran"]);
    assert!(none.starts_with("no jobs from "), "{none}");
    let out = offload(s, &["stats", "--since", "40d"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("31 days"), "{out:?}");
}
