//! Stopping the pool: a shutdown drains (queued and running jobs may finish until the last
//! part of the deadline), then every worker gets `shutdown`; a kill fails what is queued and
//! SIGKILLs every worker at once. The actor's loop ends once the last worker is gone.

use std::time::Duration;

use tokio::sync::oneshot;

use super::{failed, Actor, Leaving, Stopping, Timer};
use crate::error::StartError;
use crate::types::WorkerState;

impl Actor {
    pub(super) fn on_shutdown(&mut self, deadline: Duration, reply: oneshot::Sender<()>) {
        self.permits.close();
        match &mut self.stopping {
            Some(s) => s.replies.push(reply),
            None => {
                self.stopping = Some(Stopping {
                    replies: vec![reply],
                    stopping_workers: false,
                    kill: false,
                });
                // Drain until the last quarter of the deadline (at most the kill grace is
                // kept for the workers' own shutdown).
                let stop_grace = self.cfg.kill_grace.min(deadline / 4);
                self.timers
                    .insert(Timer::ShutdownDrain, deadline.saturating_sub(stop_grace));
            }
        }
        self.maybe_stop_workers();
    }

    /// After the drain (or once nothing is left to do), every worker gets `shutdown`.
    pub(super) fn maybe_stop_workers(&mut self) {
        let idle = self.queue.is_empty()
            && self.delayed.is_empty()
            && self.workers.values().all(|w| w.in_flight.is_empty());
        let Some(s) = &mut self.stopping else { return };
        if s.stopping_workers || !idle {
            return;
        }
        self.end_drain();
    }

    pub(super) fn end_drain(&mut self) {
        let Some(s) = &mut self.stopping else { return };
        if s.stopping_workers {
            return;
        }
        s.stopping_workers = true;
        for job in std::mem::take(&mut self.queue) {
            self.finish(
                job,
                failed("ShuttingDown", "the pool shut down before the job ran"),
            );
        }
        for (_, job) in std::mem::take(&mut self.delayed) {
            self.finish(
                job,
                failed("ShuttingDown", "the pool shut down before the job's retry"),
            );
        }
        let pids: Vec<u32> = self.workers.keys().copied().collect();
        for pid in pids {
            self.stop_worker(pid, Leaving::Shutdown);
        }
    }

    pub(super) fn kill_all(&mut self, reply: Option<oneshot::Sender<()>>) {
        self.permits.close();
        let s = self.stopping.get_or_insert(Stopping {
            replies: Vec::new(),
            stopping_workers: true,
            kill: true,
        });
        s.kill = true;
        s.stopping_workers = true;
        if let Some(r) = reply {
            s.replies.push(r);
        }
        for job in std::mem::take(&mut self.queue) {
            self.finish(
                job,
                failed("ShuttingDown", "the pool was killed before the job ran"),
            );
        }
        for (_, job) in std::mem::take(&mut self.delayed) {
            self.finish(
                job,
                failed("ShuttingDown", "the pool was killed before the job's retry"),
            );
        }
        for w in self.workers.values_mut() {
            w.leaving.get_or_insert(Leaving::Shutdown);
            w.state = WorkerState::Stopping;
            w.process.start_kill_with(libc::SIGKILL, Duration::ZERO);
        }
        if let Some(online) = self.online.take() {
            let _ = online.send(Err(StartError::Spawn(
                "the pool was stopped during start".into(),
            )));
        }
    }

    pub(super) fn finished(&self) -> bool {
        self.stopping.is_some() && self.workers.is_empty() && self.starting == 0
    }

    pub(super) fn finish_stopping(&mut self) {
        for job in std::mem::take(&mut self.queue) {
            self.finish(job, failed("ShuttingDown", "the pool stopped"));
        }
        if let Some(s) = self.stopping.take() {
            for r in s.replies {
                let _ = r.send(());
            }
        }
    }
}
