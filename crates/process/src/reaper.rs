//! No orphans, even when the supervisor is killed with SIGKILL.
//!
//! Three layers everywhere, four where cgroups exist:
//! 1. Every worker leads its own process group and has `PR_SET_PDEATHSIG = SIGKILL`
//!    (`spawn.rs`): it dies with the supervisor's spawning thread.
//! 2. Every worker's environment carries two markers (`markers.rs`), inherited by everything it starts:
//!    `OFFLOAD_SUPERVISOR=<token>` (this supervisor process) and `OFFLOAD_WORKER=<token>.<n>`
//!    (this worker). When a worker ends, its group is killed and `/proc` is scanned for
//!    processes carrying its worker marker: this also finds grandchildren that left the group
//!    (`setsid`, double fork), which `killpg` cannot reach.
//! 3. A *lifeline reaper*: one `/bin/sh` per supervisor process, started on the first spawn,
//!    with no death signal, ignoring INT/TERM/HUP, blocked reading a pipe whose only writer is
//!    the supervisor. When the supervisor dies in any way, SIGKILL included, the pipe reaches
//!    end-of-file and the reaper kills every process carrying the supervisor marker.
//!
//! 4. Where a writable cgroup v2 hierarchy exists, each worker has a cgroup of its own
//!    (`cgroup.rs`): killed at the worker's exit, and by this reaper (`cgroup.kill` of every
//!    worker cgroup left, then the per-supervisor parent is removed).
//!
//! Without cgroups, a process that scrubs its own environment escapes layers 2 and 3 once it
//! has also left the process group.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use crate::markers::{supervisor_token, SUPERVISOR_ENV, WORKER_ENV};

const REAPER_SCRIPT: &str = r#"trap '' INT TERM HUP QUIT PIPE
cat >/dev/null
for round in 1 2 3; do
  for e in $(grep -lxsz "OFFLOAD_SUPERVISOR=$1" /proc/[0-9]*/environ); do
    p=${e#/proc/}; kill -9 "${p%/environ}" 2>/dev/null
  done
done
if [ -n "$2" ] && [ -d "$2" ]; then
  for round in 1 2 3 4 5 6 7 8 9 10; do
    for d in "$2"/w*; do
      [ -d "$d" ] || continue
      echo 1 > "$d/cgroup.kill" 2>/dev/null || for p in $(cat "$d/cgroup.procs"); do kill -9 "$p" 2>/dev/null; done
      rmdir "$d" 2>/dev/null
    done
    rmdir "$2" 2>/dev/null && break
    sleep 1
  done
fi
"#;

struct Lifeline {
    _child: Child,
    _pipe: ChildStdin,
}

/// Starts the lifeline reaper once per process. Errors are logged, not fatal: layers 1 and 2
/// still hold.
pub(crate) fn ensure_lifeline() {
    static LIFELINE: OnceLock<Mutex<Option<Lifeline>>> = OnceLock::new();
    LIFELINE.get_or_init(|| match start_lifeline() {
        Ok(l) => Mutex::new(Some(l)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the lifeline reaper; children of a SIGKILLed supervisor may survive it");
            Mutex::new(None)
        }
    });
}

fn start_lifeline() -> io::Result<Lifeline> {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(REAPER_SCRIPT)
        .arg("offload-reaper")
        .arg(supervisor_token())
        .arg(
            crate::cgroup::parent_dir()
                .map(std::path::Path::as_os_str)
                .unwrap_or_default(),
        )
        .env_remove(SUPERVISOR_ENV)
        .env_remove(WORKER_ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let pipe = child
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("reaper has no stdin"))?;
    Ok(Lifeline {
        _child: child,
        _pipe: pipe,
    })
}

/// Pids of live processes whose environment holds `key=value` (Linux; empty elsewhere).
pub fn pids_with_env(key: &str, value: &str) -> Vec<u32> {
    let needle = format!("{key}={value}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// Kills (SIGKILL) every process carrying worker marker `marker`; returns their pids.
pub(crate) fn kill_marked(marker: &str) -> Vec<u32> {
    let mut killed = Vec::new();
    // Twice: a process may fork while the first round runs.
    for _ in 0..2 {
        for pid in pids_with_env(WORKER_ENV, marker) {
            if crate::sys::kill_pid(pid, libc::SIGKILL) && !killed.contains(&pid) {
                killed.push(pid);
            }
        }
    }
    killed
}
