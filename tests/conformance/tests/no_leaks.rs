//! Runs alone in its own test binary: it compares this process's open fds before and after,
//! which other tests running in parallel threads would disturb.

mod common;

use common::*;
use offload_process::{ExecOptions, Outcome};
use serde_json::json;

fn fd_table() -> Vec<(std::ffi::OsString, Option<std::path::PathBuf>)> {
    let mut fds: Vec<_> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .map(|e| (e.file_name(), std::fs::read_link(e.path()).ok()))
        .collect();
    fds.sort();
    fds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_sequential_execs_leave_no_zombie_and_no_fd() {
    let (_dir, jobs) = native_jobs(&["echo"]);
    // Warm up: the spawner thread, the lifeline reaper and the runtime's own fds.
    let warm = jobs
        .exec("echo", json!(0), ExecOptions::default())
        .await
        .unwrap();
    warm.exited().await;
    let fds_before = fd_table();
    for i in 0..1000 {
        let p = jobs
            .exec("echo", json!({"i": i}), ExecOptions::default())
            .await
            .unwrap();
        assert_eq!(
            p.outcome().await,
            Outcome::Succeeded {
                value: json!({"i": i})
            }
        );
        p.exited().await;
    }
    assert!(jobs.pids().is_empty());
    assert_eq!(my_zombies(), Vec::<u32>::new());
    let fds_after = fd_table();
    assert_eq!(fds_after, fds_before, "fds leaked over 1,000 execs");
}
