//! The daemon's cached routes (`engine/route_cache.rs`) see the jobs folder as an uncached
//! resolution did: a job file created after a refused submit is found, a removed one is refused,
//! a renamed one takes the pool its new name matches. Jobs are submitted delayed (nothing needs
//! to run); each test warms the cache with a submit first.

mod common;

use std::path::Path;
use std::time::Duration;

use common::http::{get, post, submit};
use common::{config, Running, DEADLINE};
use serde_json::{json, Value};
use tokio::time::Instant;

fn write_job(dir: &Path, name: &str) {
    std::fs::write(dir.join(name), "module.exports = () => null;").unwrap();
}

/// A daemon on a fresh jobs folder with `toml`, and that folder.
async fn daemon(toml: &str) -> (Running, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    let cfg = config(&jobs, &tmp.path().join("data"), toml);
    (Running::start(tmp, cfg).await, jobs)
}

/// `POST /v1/jobs` of `job`, delayed by an hour: (status, body).
async fn try_submit(d: &Running, job: &str) -> (u16, Value) {
    post(d, "/v1/jobs", json!({"job": job, "delay_ms": 3_600_000})).await
}

/// Submits `job` (201 expected) and answers the pool it was routed to.
async fn pool_of(d: &Running, job: &str) -> String {
    let id = submit(d, json!({"job": job, "delay_ms": 3_600_000})).await;
    let (s, v) = get(d, &format!("/v1/jobs/{id}")).await;
    assert_eq!(s, 200, "{v}");
    v["pool"].as_str().unwrap().to_owned()
}

fn unknown(answer: &(u16, Value)) -> bool {
    answer.0 == 404 && answer.1["error"]["code"] == "unknown_job"
}

#[tokio::test]
async fn a_job_file_created_after_a_refused_submit_is_found_at_once() {
    let (d, jobs) = daemon("").await;
    write_job(&jobs, "warm.js");
    assert_eq!(pool_of(&d, "warm").await, "node");
    let refused = try_submit(&d, "late").await;
    assert!(unknown(&refused), "{refused:?}");
    write_job(&jobs, "late.js");
    // No wait for the watcher: a refusal is never cached.
    assert_eq!(pool_of(&d, "late").await, "node");
}

#[tokio::test]
async fn a_removed_job_file_is_refused_at_once() {
    let (d, jobs) = daemon("").await;
    write_job(&jobs, "gone.js");
    assert_eq!(pool_of(&d, "gone").await, "node");
    assert_eq!(pool_of(&d, "gone").await, "node");
    std::fs::remove_file(jobs.join("gone.js")).unwrap();
    let refused = try_submit(&d, "gone").await;
    assert!(unknown(&refused), "{refused:?}");
}

/// A symlink removed while its target stays: the cached file still exists, so only the
/// watcher's event can make the name unknown.
#[tokio::test]
async fn a_removed_symlink_is_refused_after_the_watchers_event() {
    let (d, jobs) = daemon("").await;
    write_job(&jobs, "real.js");
    std::os::unix::fs::symlink(jobs.join("real.js"), jobs.join("alias.js")).unwrap();
    assert_eq!(pool_of(&d, "alias").await, "node");
    std::fs::remove_file(jobs.join("alias.js")).unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let answer = try_submit(&d, "alias").await;
        if unknown(&answer) {
            break;
        }
        assert_eq!(answer.0, 201, "{answer:?}");
        assert!(Instant::now() < deadline, "the removal was never seen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pool_of(&d, "real").await, "node");
}

#[tokio::test]
async fn a_renamed_job_file_takes_the_pool_its_new_name_matches() {
    let (d, jobs) = daemon(
        r#"
[[pool]]
name = "fast"
jobs = ["fast-*"]
kind = "node"
"#,
    )
    .await;
    write_job(&jobs, "slow.js");
    assert_eq!(pool_of(&d, "slow").await, "node");
    std::fs::rename(jobs.join("slow.js"), jobs.join("fast-slow.js")).unwrap();
    let refused = try_submit(&d, "slow").await;
    assert!(unknown(&refused), "{refused:?}");
    assert_eq!(pool_of(&d, "fast-slow").await, "fast");
    // And back: the old name returns to its default pool.
    std::fs::rename(jobs.join("fast-slow.js"), jobs.join("slow.js")).unwrap();
    assert!(unknown(&try_submit(&d, "fast-slow").await));
    assert_eq!(pool_of(&d, "slow").await, "node");
}
