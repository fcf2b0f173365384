//! What a process started by `WorkerCommand::spawn` (a `clone(CLONE_VM | CLONE_VFORK)` child,
//! `vfork.rs`) starts with: the state `std::process::Command` would give it, plus the
//! containment.

use std::time::Duration;

use offload_process::{ResourceLimits, SpawnError, WorkerChild, WorkerCommand};
use tokio::io::AsyncReadExt;

/// Runs `cmd` (no channel), returns its stdout; checks it exited 0 and left no zombie.
async fn output_of(cmd: WorkerCommand) -> String {
    let w = cmd
        .channel(false)
        .cgroup(false)
        .spawn()
        .await
        .expect("spawn");
    let mut child: WorkerChild = w.child;
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .await
        .expect("read stdout");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exit in time")
        .expect("wait");
    assert!(status.success(), "{status:?}: {out}");
    assert!(
        !std::path::Path::new(&format!("/proc/{}", w.pid)).exists(),
        "reaped"
    );
    assert_eq!(child.id(), None);
    out
}

fn status_field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_child_has_no_blocked_signals_sigpipe_at_default_and_its_own_group() {
    let status = output_of(WorkerCommand::new("/bin/cat").arg("/proc/self/status")).await;
    assert_eq!(status_field(&status, "SigBlk:"), "0000000000000000");
    let ignored = u64::from_str_radix(status_field(&status, "SigIgn:"), 16).expect("hex");
    // This test process ignores SIGPIPE (Rust does); its child must not.
    assert_eq!(ignored & (1 << (libc::SIGPIPE - 1)), 0, "SIGPIPE ignored");
    let stat = output_of(WorkerCommand::new("/bin/cat").arg("/proc/self/stat")).await;
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let pid = stat.split_whitespace().next().unwrap();
    assert_eq!(fields[2], pid, "leads its own process group: {stat}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_child_gets_only_stdio_and_the_channel() {
    let without = output_of(WorkerCommand::new("/bin/ls").arg("/proc/self/fd")).await;
    // 0, 1, 2 and the descriptor `ls` opened on the directory it lists.
    assert_eq!(
        without.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    let w = WorkerCommand::new("/bin/ls")
        .arg("/proc/self/fd")
        .cgroup(false)
        .spawn()
        .await
        .expect("spawn");
    let mut child = w.child;
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    assert!(child.wait().await.unwrap().success());
    // The channel is fd 3; `ls` got 4 for its directory.
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3", "4"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_lookup_cwd_env_and_rlimits_apply() {
    let out = output_of(
        WorkerCommand::new("sh")
            .args(["-c", "pwd; echo \"$OFFLOAD_SPAWN_TEST\"; ulimit -n"])
            .cwd("/")
            .env("OFFLOAD_SPAWN_TEST", "seen")
            .limits(ResourceLimits::none().open_files(77)),
    )
    .await;
    assert_eq!(out.lines().collect::<Vec<_>>(), ["/", "seen", "77"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_is_a_spawn_error_and_leaves_nothing() {
    for program in ["offload-no-such-program", "/nonexistent/offload-program"] {
        let err = WorkerCommand::new(program)
            .channel(false)
            .cgroup(false)
            .spawn()
            .await
            .expect_err("no such program");
        match err {
            SpawnError::Spawn { source, .. } => {
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{program}");
            }
            other => panic!("{other}"),
        }
    }
    // A directory: execve fails in the child, which is reaped before the error returns.
    let err = WorkerCommand::new("/")
        .channel(false)
        .cgroup(false)
        .spawn()
        .await
        .expect_err("not executable");
    assert!(matches!(err, SpawnError::Spawn { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variable_that_cannot_be_set_is_refused_before_the_spawn() {
    for (name, value) in [("A=B", "x"), ("", "x"), ("A\0B", "x"), ("A", "x\0y")] {
        let err = WorkerCommand::new("/bin/true")
            .channel(false)
            .cgroup(false)
            .env(name, value)
            .spawn()
            .await
            .expect_err("refused");
        match &err {
            SpawnError::Env(e) => assert_eq!(e.name, name, "{err}"),
            other => panic!("{other}"),
        }
    }
}
