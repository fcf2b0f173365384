//! No log line lost or given to the wrong attempt (`docs/design/job-logs.md`):
//!
//! - a job that prints 1,000 lines, one on stderr and an unterminated piece right before it
//!   returns has every one of them in its log, in order, not shared — on a Node, a Python and
//!   a Rust pool worker (one worker each, so that the next job starts on it at once) and in a
//!   fresh process, many times over;
//! - a job printing 200,000 lines as fast as it can gets every line up to the per-attempt
//!   bound, and a marker with the exact count of lines and bytes dropped (nothing lost: the
//!   job waits on its own stdout while the daemon is behind).
//!
//! No timing: each step waits for the job's end (its lines are stored before its end is
//! recorded).

mod common;

use std::path::{Path, PathBuf};

use common::http::{get, submit, wait_result};
use common::{config, sqlite, Running};
use serde_json::json;

/// Jobs of each pool kind in the burst test.
const RUNS: usize = 12;
/// Lines of a burst.
const BURST: usize = 1000;

/// A jobs folder in `dir`: the fixtures (`tests/fixtures/burst`) and the Rust worker as the
/// executable job `burst-rs`.
fn jobs(dir: &Path) -> PathBuf {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/burst");
    let jobs = dir.join("jobs");
    std::fs::create_dir_all(jobs.join("proc")).unwrap();
    for f in ["burst.js", "burst_py.py", "proc/burst.js"] {
        std::fs::copy(fixtures.join(f), jobs.join(f)).unwrap();
    }
    std::fs::copy(rust_worker(), jobs.join("burst-rs")).unwrap();
    jobs
}

/// The Rust worker `crates/worker/examples/burst.rs`, built into this test's target folder.
fn rust_worker() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/deps/logs_exact-…
    let profile = exe.parent().unwrap().parent().unwrap();
    let target = profile.parent().unwrap();
    let release = profile.file_name().is_some_and(|n| n == "release");
    let mut cmd = std::process::Command::new(env!("CARGO"));
    cmd.args(["build", "-q", "-p", "offload-worker", "--example", "burst"])
        .arg("--target-dir")
        .arg(target)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "cannot build the burst example: {status}");
    profile.join("examples/burst")
}

fn toml(max_bytes: usize) -> String {
    format!(
        r#"
[limits]
max_log_bytes_per_attempt = {max_bytes}

[[pool]]
name = "node"
jobs = ["burst"]
kind = "node"
max = 1

[[pool]]
name = "python"
jobs = ["burst_py"]
kind = "python"
max = 1

[[pool]]
name = "native:burst-rs"
max = 1

[[pool]]
name = "proc"
jobs = ["proc/*"]
kind = "node"
isolation = "process"
max = 2
"#
    )
}

/// Every line of attempt 1 of job `id`, page by page: (stream, text, shared, cut).
async fn all_lines(d: &Running, id: &str) -> Vec<(String, String, bool, bool)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("?attempt=1&limit=10000&cursor={c}"),
            None => "?attempt=1&limit=10000".to_owned(),
        };
        let (s, page) = get(d, &format!("/v1/jobs/{id}/logs{q}")).await;
        assert_eq!(s, 200, "{page}");
        for l in page["lines"].as_array().unwrap() {
            out.push((
                l["stream"].as_str().unwrap().to_owned(),
                l["line"].as_str().unwrap().to_owned(),
                l["shared"].as_bool().unwrap(),
                l["cut"].as_bool().unwrap(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

fn numbered(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{tag} {i:06}")).collect()
}

/// The job's log is exactly its burst: 1,000 numbered stdout lines, its stderr line and its
/// unterminated piece, none shared, no marker.
async fn check_burst(d: &Running, id: &str, tag: &str) {
    let got = all_lines(d, id).await;
    let what = |got: &[(String, String, bool, bool)]| {
        format!(
            "job {id} ({tag}): {} lines, first {:?}, last {:?}",
            got.len(),
            got.first(),
            got.last()
        )
    };
    assert!(got.iter().all(|l| !l.2 && !l.3), "{}", what(&got));
    let stdout: Vec<&str> = got
        .iter()
        .filter(|l| l.0 == "stdout")
        .map(|l| l.1.as_str())
        .collect();
    let stderr: Vec<&str> = got
        .iter()
        .filter(|l| l.0 == "stderr")
        .map(|l| l.1.as_str())
        .collect();
    let mut want = numbered(tag, BURST);
    want.push(format!("{tag} tail"));
    assert_eq!(stdout, want, "{}", what(&got));
    assert_eq!(stderr, [format!("{tag} err")], "{}", what(&got));
}

#[tokio::test]
async fn every_line_printed_right_before_returning_is_the_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&jobs(tmp.path()), &tmp.path().join("data"), &toml(1 << 20));
    let d = Running::start_with(cfg.clone(), sqlite(&cfg)).await;

    // All submitted at once: each pool's one worker runs its jobs back to back, the next
    // starting as soon as the previous answered.
    let mut ids = Vec::new();
    for run in 0..RUNS {
        for job in ["burst", "burst_py", "burst-rs"] {
            let tag = format!("{job}-{run}");
            let body = json!({"job": job, "params": {"tag": tag}});
            ids.push((submit(&d, body).await, tag));
        }
        if run % 3 == 0 {
            let tag = format!("proc-{run}");
            ids.push((
                submit(&d, json!({"job": "proc/burst", "params": {"tag": tag}})).await,
                tag,
            ));
        }
    }
    for (id, tag) in &ids {
        let end = wait_result(&d, id).await;
        assert_eq!(end["state"], "succeeded", "{tag}: {end}");
        check_burst(&d, id, tag).await;
    }
    d.stop().await;
}

/// A flood of `lines` 13-byte lines ("flood 000000" and its newline) over a `max`-byte
/// bound: the first lines that fit, in order, then one marker with the exact rest.
async fn check_flood(d: &Running, id: &str, lines: usize, max: usize) {
    let got = all_lines(d, id).await;
    let size = "flood 000000".len() + 1;
    let kept = max / size;
    let (marker, kept_lines) = got.split_last().unwrap();
    assert_eq!(kept_lines.len(), kept, "job {id}: marker {marker:?}");
    let text: Vec<&str> = kept_lines.iter().map(|l| l.1.as_str()).collect();
    assert_eq!(text, numbered("flood", kept), "job {id}");
    assert!(kept_lines.iter().all(|l| l.0 == "stdout" && !l.2 && !l.3));
    let dropped = lines - kept;
    assert!(marker.3, "the last line is the marker: {marker:?}");
    assert_eq!(
        marker.1,
        format!(
            "[offload: log cut: {dropped} more line(s), {} byte(s) dropped over \
             max_log_bytes_per_attempt = {max}]",
            dropped * size
        )
    );
}

#[tokio::test]
async fn a_flood_keeps_every_line_up_to_the_bound_and_counts_the_rest_exactly() {
    const FLOOD: usize = 200_000;
    const MAX: usize = 256 * 1024;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&jobs(tmp.path()), &tmp.path().join("data"), &toml(MAX));
    let d = Running::start_with(cfg.clone(), sqlite(&cfg)).await;
    let params = json!({"tag": "flood", "lines": FLOOD, "tail": false});
    let mut ids = Vec::new();
    for body in [
        json!({"job": "burst", "params": params}),
        json!({"job": "proc/burst", "params": params}),
        json!({"job": "burst_py", "params": params}),
        json!({"job": "burst-rs", "params": params}),
    ] {
        ids.push(submit(&d, body).await);
    }
    for id in &ids {
        let end = wait_result(&d, id).await;
        assert_eq!(end["state"], "succeeded", "{end}");
        check_flood(&d, id, FLOOD, MAX).await;
    }
    d.stop().await;
}
