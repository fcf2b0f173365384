//! Kills on request: one worker (`kill_worker`) or every worker (`kill_all`), soft or hard, in
//! parallel or in sequence.
//!
//! - Soft: the worker gets `shutdown` with the grace (no new job; its running jobs and its
//!   shutdown hook may finish), then `SIGKILL` one second after the grace if still there. A
//!   worker that declared `busy()` is told only once it calls `ready()` (seed 001: a busy
//!   worker "will not die until it's ready() again"); it takes no job meanwhile but still gets
//!   broadcasts. Busy past `soft_kill_busy_limit`, it is hard-killed
//!   ([`PoolEvent::SoftKillEscalated`], reason [`EscalationReason::BusyPastLimit`]).
//! - Hard: the worker gets the `kill` notice (its hard-kill hook runs), then `SIGKILL` after the
//!   grace (at once for a zero grace); its running jobs end with the kill.
//!
//! One killed worker is replaced (the pool keeps its size); `kill_all` ends the pool: queued
//! jobs fail with `ShuttingDown` ("killed before the job ran"), and in sequence each worker is
//! told once the previous is gone.

use std::collections::VecDeque;
use std::time::Duration;

use offload_balance::TargetId;
use offload_protocol::{Kill, ToWorker};
use tokio::sync::oneshot;

use super::{failed, Actor, Leaving, Stopping, Timer};
use crate::error::PoolError;
use crate::types::{EscalationReason, KillMode, KillOrder, PoolEvent, WorkerState};

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Actor {
    /// Kills one worker; it is replaced.
    pub(super) fn kill_worker(&mut self, pid: u32, mode: KillMode) -> Result<(), PoolError> {
        if !self.workers.contains_key(&pid) {
            return Err(PoolError::NoSuchWorker { pid });
        }
        self.kill_one(pid, mode, Leaving::Killed);
        Ok(())
    }

    fn kill_one(&mut self, pid: u32, mode: KillMode, why: Leaving) {
        let Some(w) = self.workers.get_mut(&pid) else {
            return;
        };
        if w.state == WorkerState::Stopping && matches!(mode, KillMode::Soft { .. }) {
            return;
        }
        w.leaving.get_or_insert(why);
        w.state = WorkerState::Stopping;
        let _ = self.balancer.del(&TargetId::from(pid));
        let grace = mode.grace();
        if let KillMode::Soft { .. } = mode {
            if w.flow_busy {
                // Told once it is ready again (`soft_kill_when_ready`), or hard-killed.
                w.soft_kill_waiting = Some(grace);
                self.timers
                    .insert(Timer::SoftKillBusy(pid), self.cfg.soft_kill_busy_limit);
                self.emit(PoolEvent::WorkerKilled { pid, mode });
                return;
            }
        }
        w.soft_kill_waiting = None;
        self.tell_kill(pid, mode);
        self.emit(PoolEvent::WorkerKilled { pid, mode });
    }

    /// Sends the kill's frame (or `SIGKILL` when it cannot be sent) and arms its grace.
    fn tell_kill(&mut self, pid: u32, mode: KillMode) {
        let Some(w) = self.workers.get_mut(&pid) else {
            return;
        };
        let grace = mode.grace();
        let told = match mode {
            KillMode::Soft { .. } => w
                .process
                .send(ToWorker::Shutdown(offload_protocol::Shutdown::new(millis(
                    grace,
                ))))
                .is_ok(),
            KillMode::Hard { .. } => {
                grace > Duration::ZERO
                    && w.process
                        .send(ToWorker::Kill(Kill::new(millis(grace))))
                        .is_ok()
            }
        };
        if !told {
            w.process.start_kill_with(libc::SIGKILL, Duration::ZERO);
            return;
        }
        let after = match mode {
            // The worker's own shutdown takes the grace; SIGKILL one second later.
            KillMode::Soft { .. } => grace.saturating_add(Duration::from_secs(1)),
            KillMode::Hard { .. } => grace,
        };
        self.timers.insert(Timer::StopGrace(pid), after);
    }

    /// A worker called `ready()`: a soft kill that waited for it goes on.
    pub(super) fn soft_kill_when_ready(&mut self, pid: u32) {
        let Some(grace) = self
            .workers
            .get_mut(&pid)
            .and_then(|w| w.soft_kill_waiting.take())
        else {
            return;
        };
        self.tell_kill(pid, KillMode::Soft { grace });
    }

    /// A soft-killed worker stayed busy past `soft_kill_busy_limit`: a hard kill with the
    /// soft kill's grace (its hard-kill hook runs), with the reason as an event.
    pub(super) fn on_soft_kill_busy_limit(&mut self, pid: u32) {
        let Some(grace) = self
            .workers
            .get_mut(&pid)
            .and_then(|w| w.soft_kill_waiting.take())
        else {
            return;
        };
        let limit = self.cfg.soft_kill_busy_limit;
        self.emit(PoolEvent::SoftKillEscalated {
            pid,
            reason: EscalationReason::BusyPastLimit { limit },
        });
        let mode = KillMode::Hard { grace };
        self.tell_kill(pid, mode);
        self.emit(PoolEvent::WorkerKilled { pid, mode });
    }

    /// Kills every worker and ends the pool; `reply` is answered once the last is gone.
    pub(super) fn kill_all_with(
        &mut self,
        mode: KillMode,
        order: KillOrder,
        reply: oneshot::Sender<()>,
    ) {
        self.permits.close();
        let hard = matches!(mode, KillMode::Hard { .. });
        let s = self.stopping.get_or_insert(Stopping {
            replies: Vec::new(),
            stopping_workers: true,
            kill: hard,
        });
        s.stopping_workers = true;
        s.kill |= hard;
        s.replies.push(reply);
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
        let mut pids: Vec<(usize, u32)> = self
            .workers
            .iter()
            .map(|(&pid, w)| (w.index, pid))
            .collect();
        pids.sort_unstable();
        match order {
            KillOrder::Parallel => {
                for (_, pid) in pids {
                    self.kill_one(pid, mode, Leaving::Shutdown);
                }
            }
            KillOrder::Sequence => {
                let mut rest: VecDeque<u32> = pids.into_iter().map(|(_, p)| p).collect();
                if let Some(&first) = rest.front() {
                    self.kill_one(first, mode, Leaving::Shutdown);
                }
                rest.retain(|p| self.workers.contains_key(p));
                self.kill_sequence = Some((mode, rest));
            }
        }
        if let Some(online) = self.online.take() {
            let _ = online.send(Err(crate::StartError::Spawn(
                "the pool was stopped during start".into(),
            )));
        }
    }

    /// A worker is gone: in a sequence, the next one is told.
    pub(super) fn kill_next_in_sequence(&mut self, gone: u32) {
        let Some((mode, rest)) = &mut self.kill_sequence else {
            return;
        };
        let mode = *mode;
        let was_current = rest.front() == Some(&gone);
        rest.retain(|p| *p != gone);
        if !was_current {
            return;
        }
        let next = rest.front().copied();
        match next {
            Some(pid) => self.kill_one(pid, mode, Leaving::Shutdown),
            None => self.kill_sequence = None,
        }
    }
}
