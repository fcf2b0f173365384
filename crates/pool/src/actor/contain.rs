//! Containment at the end of a job: when a resident worker becomes idle, whatever its jobs
//! started and left behind is killed before it takes another job; the worker lives on.
//!
//! With a cgroup per worker (`offload_process` `cgroup.rs`) the sweep reads one small file and
//! runs inline. Without, it scans `/proc` (process group and environment marker), so it runs on
//! the blocking pool and the worker takes no job until it is done (`Worker::sweeping`): a
//! new job's processes must never be mistaken for an old job's leftovers.
//!
//! Either sweep is skipped when the system created no process since the worker's previous
//! sweep began (`JobProcess::may_have_leftovers`, one `pread` of `/proc/loadavg`): that sweep
//! killed every older leftover, so there is nothing to find. A pool of tiny tasks thus does
//! not read `cgroup.procs` or list `/proc` after every job.

use super::{Actor, WorkerState};

impl Actor {
    /// Sweeps the worker `pid` if it is ready and idle.
    pub(super) fn sweep_if_idle(&mut self, pid: u32) {
        let Some(w) = self.workers.get_mut(&pid) else {
            return;
        };
        if !w.in_flight.is_empty() || w.state != WorkerState::Ready || w.sweeping {
            return;
        }
        if !w.process.may_have_leftovers() {
            // No process was created anywhere since the last sweep: nothing to kill, and the
            // worker takes its next job at once (the common case of a busy pool).
            return;
        }
        if w.process.has_cgroup() {
            w.process.sweep_leftovers();
            return;
        }
        w.sweeping = true;
        let process = w.process.clone();
        let tx = self.swept_tx.clone();
        tokio::task::spawn_blocking(move || {
            process.sweep_leftovers();
            let _ = tx.send(pid);
        });
    }

    /// A fallback sweep is done: the worker takes jobs again.
    pub(super) fn on_swept(&mut self, pid: u32) {
        if let Some(w) = self.workers.get_mut(&pid) {
            w.sweeping = false;
        }
    }
}
