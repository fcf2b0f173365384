//! What is killed around a worker: the leftovers of a job while the worker lives on
//! ([`JobProcess::sweep_leftovers`]), and everything at its exit. Four layers where cgroups
//! exist (`cgroup.rs`), three elsewhere (`reaper.rs`).

use crate::cgroup::WorkerCgroup;
use crate::process::JobProcess;
use crate::reaper::{pids_with_env, WORKER_ENV};
use crate::sys;

/// A worker's containment: its environment marker and, where available, its cgroup.
#[derive(Debug)]
pub(crate) struct Containment {
    pub(crate) marker: String,
    pub(crate) cgroup: Option<WorkerCgroup>,
}

impl Containment {
    /// SIGKILLs every process the worker `pid` started and left behind, keeping the worker:
    /// with a cgroup, every member but the worker; without, the members of its process group
    /// and the processes carrying its marker (a process that left the group *and* scrubbed its
    /// environment is then out of reach).
    pub(crate) fn sweep(&self, pid: u32) -> Vec<u32> {
        if let Some(cg) = &self.cgroup {
            return cg.kill_others(pid);
        }
        let mut killed = Vec::new();
        // Twice: a process may fork while the first round runs.
        for _ in 0..2 {
            let found = crate::spawn::live_group_members(pid)
                .into_iter()
                .chain(pids_with_env(WORKER_ENV, &self.marker));
            for p in found {
                if p != pid && !killed.contains(&p) && sys::kill_pid(p, libc::SIGKILL) {
                    killed.push(p);
                }
            }
        }
        killed
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

impl JobProcess {
    /// Kills (SIGKILL) every process this worker started and left behind, while the worker
    /// itself lives on; returns their pids. Call it when the worker has no job running (a
    /// pool does, each time a resident worker becomes idle): a process of a running job
    /// would be killed too.
    ///
    /// With a cgroup ([`has_cgroup`](Self::has_cgroup)) this reads one small file; without,
    /// it scans `/proc` (run it off the async threads).
    pub fn sweep_leftovers(&self) -> Vec<u32> {
        let killed = self.containment().sweep(self.pid());
        if !killed.is_empty() {
            tracing::info!(
                pid = self.pid(),
                ?killed,
                "killed processes a job left behind"
            );
        }
        killed
    }

    /// Whether this worker has a cgroup of its own (the fourth containment layer).
    pub fn has_cgroup(&self) -> bool {
        self.containment().cgroup.is_some()
    }
}
