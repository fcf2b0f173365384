//! The pool's health: the periodic samples of every worker's process tree (CPU, RSS, fed to
//! the balancer), the pings (`liveness.rs`), recycling by RSS, heap, CPU, age and idleness,
//! and the crash-loop detector (restart backoff, `Degraded`, `Recovered`).

use std::time::Instant;

use offload_balance::LoadSample;

use super::{Actor, Timer};
use crate::procfs;
use crate::types::{PoolEvent, RecycleReason, WorkerState};

impl Actor {
    pub(super) fn on_health(&mut self) {
        let now = Instant::now();
        let mut samples = Vec::new();
        let mut recycle = Vec::new();
        let recycle_cfg = self.cfg.recycle;
        // One pass over /proc for every worker (none when there is no worker).
        let snapshot = (!self.workers.is_empty()).then(procfs::Snapshot::take);
        let ticks_per_sec = procfs::ticks_per_sec();
        for (&pid, w) in &mut self.workers {
            if let Some(tree) = snapshot.as_ref().and_then(|s| s.tree(pid)) {
                if let Some((last, at)) = w.last_ticks {
                    let secs = now.duration_since(at).as_secs_f64();
                    if secs > 0.0 {
                        w.cpu =
                            (tree.ticks.saturating_sub(last) as f64 / ticks_per_sec) / secs * 100.0;
                    }
                }
                w.last_ticks = Some((tree.ticks, now));
                w.rss = tree.rss;
                w.processes = tree.processes;
                samples.push((pid, LoadSample::new(w.cpu, tree.rss)));
            }
            w.cpu_over = match recycle_cfg.max_cpu {
                Some(max) if w.cpu > f64::from(max) => w.cpu_over.saturating_add(1),
                _ => 0,
            };
            if w.state != WorkerState::Ready {
                continue;
            }
            if recycle_cfg.max_rss.is_some_and(|max| w.rss > max) {
                recycle.push((pid, RecycleReason::Memory));
            } else if recycle_cfg
                .max_heap
                .is_some_and(|max| w.heap_used.is_some_and(|h| h > max))
            {
                recycle.push((pid, RecycleReason::Heap));
            } else if w.cpu_over >= recycle_cfg.cpu_samples.max(1) {
                recycle.push((pid, RecycleReason::Cpu));
            } else if recycle_cfg
                .max_age
                .is_some_and(|age| w.spawned.elapsed() >= age)
            {
                recycle.push((pid, RecycleReason::Age));
            }
        }
        self.send_pings(now);
        self.balancer.refresh_params(samples);
        for (pid, reason) in recycle {
            self.retire(pid, reason);
        }
        if let Some(idle) = self.cfg.idle_timeout {
            let surplus = self.active_workers().saturating_sub(self.cfg.min);
            let mut idle_workers: Vec<(Instant, u32)> = self
                .workers
                .iter()
                .filter(|(_, w)| {
                    w.state == WorkerState::Ready
                        && w.in_flight.is_empty()
                        && now.duration_since(w.idle_since) >= idle
                })
                .map(|(&pid, w)| (w.idle_since, pid))
                .collect();
            idle_workers.sort_unstable();
            if self.queue.is_empty() {
                for (_, pid) in idle_workers.into_iter().take(surplus) {
                    self.retire(pid, RecycleReason::Idle);
                }
            }
        }
        if self.degraded
            && self
                .recent_exits
                .back()
                .is_none_or(|t| now.duration_since(*t) > self.cfg.restart.interval)
        {
            self.degraded = false;
            self.recent_exits.clear();
            self.consecutive_failures = 0;
            self.next_spawn_at = None;
            self.emit(PoolEvent::Recovered);
        }
    }

    /// Samples the process trees of the workers not sampled yet (started since the last
    /// health sample), so that `health()` never reports a live worker with no memory: their
    /// RSS and process count now, their CPU from the next sample on (it needs an interval).
    pub(super) fn sample_new_workers(&mut self) {
        if self.workers.values().all(|w| w.last_ticks.is_some()) {
            return;
        }
        let snapshot = procfs::Snapshot::take();
        let now = Instant::now();
        for (&pid, w) in &mut self.workers {
            if w.last_ticks.is_some() {
                continue;
            }
            if let Some(tree) = snapshot.tree(pid) {
                w.last_ticks = Some((tree.ticks, now));
                w.rss = tree.rss;
                w.processes = tree.processes;
            }
        }
    }

    /// An unexpected exit or a failed spawn: back off, and watch for a crash loop.
    pub(super) fn note_failure(&mut self) {
        let now = Instant::now();
        self.recent_exits.push_back(now);
        let window = self.cfg.restart.interval;
        while self
            .recent_exits
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            self.recent_exits.pop_front();
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let n = u32::try_from(self.recent_exits.len()).unwrap_or(u32::MAX);
        if n > self.cfg.restart.max_restarts && !self.degraded {
            self.degraded = true;
            tracing::error!(pool = %self.cfg.name, restarts = n, "workers die too often: pool degraded");
            self.emit(PoolEvent::Degraded { restarts: n });
        }
        let delay = if self.degraded {
            self.cfg.restart.max
        } else {
            self.cfg
                .restart
                .base
                .saturating_mul(1u32 << self.consecutive_failures.saturating_sub(1).min(20))
                .min(self.cfg.restart.max)
        };
        self.next_spawn_at = Some(now.checked_add(delay).unwrap_or(now));
        if !self.respawn_timer {
            self.respawn_timer = true;
            self.timers.insert(Timer::Respawn, delay);
        }
    }
}
