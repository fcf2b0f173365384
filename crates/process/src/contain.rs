//! What is killed around a worker: the leftovers of a job while the worker lives on
//! (`JobProcess::sweep_leftovers`, in `process/handle.rs`), and everything at its exit. Four layers where cgroups
//! exist (`cgroup.rs`), three elsewhere (`reaper.rs`).

use std::sync::Mutex;

use crate::cgroup::WorkerCgroup;
use crate::markers::WORKER_ENV;
use crate::sys;

/// A worker's containment: its environment marker and, where available, its cgroup.
#[derive(Debug)]
pub(crate) struct Containment {
    pub(crate) marker: String,
    pub(crate) cgroup: Option<WorkerCgroup>,
    /// The last pid the system had created when the previous sweep began (the worker's own
    /// pid before the first). Every leftover older than that was killed by that sweep, so
    /// without a cgroup only newer pids are read (all of them after a pid wrap-around), and
    /// with or without one, no sweep is needed while it is still the last pid.
    pub(crate) swept_from: Mutex<u32>,
}

impl Containment {
    pub(crate) fn new(pid: u32, marker: String, cgroup: Option<WorkerCgroup>) -> Self {
        Self {
            marker,
            cgroup,
            swept_from: Mutex::new(pid),
        }
    }
}

impl Containment {
    /// SIGKILLs every process the worker `pid` started and left behind, keeping the worker:
    /// with a cgroup, every member but the worker; without, the members of its process group
    /// and the processes carrying its marker (a process that left the group *and* scrubbed its
    /// environment is then out of reach).
    /// Whether a sweep could find anything: only when the system created a process since the
    /// previous sweep began (every older leftover was killed by that sweep, cgroup or not).
    /// One `pread` of `/proc/loadavg`, cheaper than the sweep itself (the cgroup's sweep opens
    /// and reads `cgroup.procs`, the other lists `/proc`), so a pool's actor asks it each
    /// time a worker becomes idle.
    pub(crate) fn may_have_leftovers(&self) -> bool {
        let swept_from = *self
            .swept_from
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sys::last_pid() != Some(swept_from)
    }

    pub(crate) fn sweep(&self, pid: u32) -> Vec<u32> {
        let mut swept_from = self
            .swept_from
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let began_at = sys::last_pid();
        if let Some(cg) = &self.cgroup {
            // Read before the members: a process created after it makes the next
            // `may_have_leftovers` true.
            let killed = cg.kill_others(pid);
            *swept_from = began_at.unwrap_or(0);
            return killed;
        }
        let from = match began_at {
            Some(last) if last >= *swept_from => *swept_from,
            _ => 0, // wrapped around, or unknown: read everything
        };
        let killed = self.kill_new_strays(pid, from);
        *swept_from = began_at.unwrap_or(0);
        killed
    }

    /// SIGKILLs the processes newer than pid `from` that are in `pid`'s process group or carry
    /// the worker's marker, twice (a process may fork while the first round runs).
    fn kill_new_strays(&self, pid: u32, from: u32) -> Vec<u32> {
        let needle = format!("{WORKER_ENV}={}", self.marker);
        let me = std::process::id();
        let mut killed = Vec::new();
        for _ in 0..2 {
            let Ok(dir) = std::fs::read_dir("/proc") else {
                break;
            };
            for p in dir
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            {
                if p <= from || p == pid || p == me || killed.contains(&p) {
                    continue;
                }
                let Some(stat) = sys::proc_stat(p) else {
                    continue;
                };
                let ours = stat.live && (stat.pgrp == pid || environ_has(p, &needle));
                if ours && sys::kill_pid(p, libc::SIGKILL) {
                    killed.push(p);
                }
            }
        }
        killed
    }

    /// At the worker `pid`'s exit (its group already killed): SIGKILLs what it left outside
    /// its group that carries its marker, cgroup or not (a job running as a user who may
    /// write another cgroup's `cgroup.procs` can leave its own). Only processes created since
    /// the last sweep began are read (every older one was killed by that sweep, or is not the
    /// worker's: the first "sweep" is the worker's own start).
    pub(crate) fn kill_strays_at_exit(&self, pid: u32) -> Vec<u32> {
        let from = {
            let swept_from = *self
                .swept_from
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match sys::last_pid() {
                Some(last) if last >= swept_from => swept_from,
                _ => 0,
            }
        };
        // On this thread: a blocking-pool thread per exit made hundreds of threads when many
        // workers ended at once, and reading only the new pids is short.
        self.kill_new_strays(pid, from)
    }

    /// At the worker's exit: kills its whole cgroup, waits until it is empty, removes it.
    /// Returns the pids that were still in it.
    pub(crate) async fn kill_cgroup(&self) -> Vec<u32> {
        match &self.cgroup {
            Some(cg) => cg.kill_all_and_remove().await,
            None => Vec::new(),
        }
    }
}

/// Whether `/proc/<pid>/environ` holds exactly `needle` (`KEY=value`).
fn environ_has(pid: u32, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()))
        .unwrap_or(false)
}
