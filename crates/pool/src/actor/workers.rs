//! The workers: spawning one (off the actor, on a task), its handshake (`ready`), the events
//! its process reports, its exit (its jobs retried or failed), recycling and stopping, and
//! scaling between `min` and `max`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use offload_balance::{Target, TargetId};
use offload_process::{start_process, JobKind, Outcome, ProcessEvent, ProcessOptions};
use offload_protocol::{Shutdown, ToWorker};
use tokio::sync::mpsc;

use super::{failed, parse_wire_id, Actor, Leaving, SpawnResult, Timer, Worker};
use crate::config::WorkerKind;
use crate::error::StartError;
use crate::types::{Attempt, JobEvent, PoolEvent, RecycleReason, WorkerState};

impl Actor {
    /// `start` succeeds once `min` workers are ready.
    pub(super) fn check_online(&mut self) {
        if self.online.is_none() {
            return;
        }
        let ready = self.live_ready();
        if ready >= self.cfg.min {
            if let Some(online) = self.online.take() {
                let _ = online.send(Ok(()));
            }
            self.emit(PoolEvent::Online { workers: ready });
        }
    }

    /// `start` waited `start_timeout`: it fails with what the starting workers wrote, and the
    /// pool is killed.
    pub(super) fn start_timed_out(&mut self) {
        let Some(online) = self.online.take() else {
            return;
        };
        let ready = self.live_ready();
        let stderr = self
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Starting)
            .flat_map(|w| w.process.stderr_tail())
            .collect::<Vec<_>>()
            .join("\n");
        let _ = online.send(Err(StartError::Timeout {
            ready,
            min: self.cfg.min,
            waited: self.cfg.start_timeout,
            stderr,
        }));
        self.kill_all(None);
    }

    pub(super) fn on_spawned(&mut self, sp: SpawnResult) {
        self.starting = self.starting.saturating_sub(1);
        match sp.result {
            Ok(process) => {
                let pid = process.pid();
                self.slots[sp.index] = Some(pid);
                self.shared.map().insert(pid, process.clone());
                let now = Instant::now();
                self.workers.insert(
                    pid,
                    Worker {
                        process,
                        index: sp.index,
                        state: WorkerState::Starting,
                        spawned: now,
                        capacity: self.cfg.concurrency as usize,
                        in_flight: HashMap::new(),
                        jobs_done: 0,
                        failures: 0,
                        rss: 0,
                        cpu: 0.0,
                        heap_used: None,
                        heap_total: None,
                        processes: 1,
                        cpu_over: 0,
                        pings: false,
                        last_pong: now,
                        ping: None,
                        last_ticks: None,
                        last_error: None,
                        flow_busy: false,
                        soft_kill_waiting: None,
                        sweeping: false,
                        idle_since: now,
                        leaving: None,
                    },
                );
                self.emit(PoolEvent::WorkerSpawned {
                    pid,
                    index: sp.index,
                });
                for ev in self.early.remove(&pid).unwrap_or_default() {
                    self.on_worker_event(ev);
                }
                if self.starting == 0 {
                    self.early.clear();
                }
                if self.stopping.as_ref().is_some_and(|s| s.stopping_workers) {
                    let kill = self.stopping.as_ref().is_some_and(|s| s.kill);
                    if kill {
                        if let Some(w) = self.workers.get(&pid) {
                            w.process.start_kill_with(libc::SIGKILL, Duration::ZERO);
                        }
                    } else {
                        self.stop_worker(pid, Leaving::Shutdown);
                    }
                }
            }
            Err(e) => {
                self.slots[sp.index] = None;
                tracing::error!(pool = %self.cfg.name, error = %e, "cannot start a worker");
                if let Some(online) = self.online.take() {
                    let _ = online.send(Err(StartError::Spawn(e)));
                    self.kill_all(None);
                    return;
                }
                self.note_failure();
            }
        }
    }

    pub(super) fn on_worker_event(&mut self, ev: ProcessEvent) {
        if !self.workers.contains_key(&ev.pid()) {
            if self.starting > 0 {
                self.early.entry(ev.pid()).or_default().push(ev);
            }
            return;
        }
        match ev {
            ProcessEvent::Ready { pid, ready } => {
                let Some(w) = self.workers.get_mut(&pid) else {
                    return;
                };
                if w.state != WorkerState::Starting {
                    return;
                }
                w.state = WorkerState::Ready;
                w.pings = ready.has_capability("ping");
                w.last_pong = Instant::now();
                let announced = ready.concurrency.unwrap_or(1).max(1) as usize;
                w.capacity = announced.min(self.cfg.concurrency as usize);
                let weight = self.cfg.weights.get(w.index).copied().unwrap_or(1.0);
                let target = Target::new(pid)
                    .with_weight(weight)
                    .with_capacity(Some(w.capacity as u64));
                if let Err(e) = self.balancer.add(target) {
                    tracing::error!(pool = %self.cfg.name, pid, error = %e, "cannot add a worker to the balancer");
                }
                self.emit(PoolEvent::WorkerReady { pid });
                self.check_online();
                if self.stopping.is_some()
                    && self.stopping.as_ref().is_some_and(|s| s.stopping_workers)
                {
                    self.stop_worker(pid, Leaving::Shutdown);
                }
            }
            ProcessEvent::Progress {
                pid,
                id,
                data,
                credit,
                ..
            } => {
                let Some(job_id) = parse_wire_id(&id) else {
                    return;
                };
                if let Some(f) = self
                    .workers
                    .get(&pid)
                    .and_then(|w| w.in_flight.get(&job_id))
                {
                    let credit = keep_credit(&f.job, credit);
                    self.emit_job(
                        &f.job,
                        JobEvent::Progress {
                            id: job_id,
                            pid,
                            data,
                            credit,
                        },
                    );
                }
            }
            ProcessEvent::Event {
                pid,
                id,
                name,
                data,
                receiver,
                credit,
                ..
            } => {
                let job_id = id.as_deref().and_then(parse_wire_id);
                let flight =
                    job_id.and_then(|j| self.workers.get(&pid).and_then(|w| w.in_flight.get(&j)));
                match flight {
                    Some(f) => {
                        let ev = JobEvent::Event {
                            id: f.job.id,
                            pid,
                            name,
                            data,
                            receiver,
                            credit: keep_credit(&f.job, credit),
                        };
                        if let Some(tx) = &f.job.events {
                            let _ = tx.send(ev.clone());
                        }
                        if receiver.to_manager() {
                            self.emit(PoolEvent::Job(ev));
                        }
                    }
                    None if receiver.to_manager() => self.emit(PoolEvent::Job(JobEvent::Event {
                        id: 0,
                        pid,
                        name,
                        data,
                        receiver,
                        credit,
                    })),
                    None => {}
                }
            }
            ProcessEvent::Answer { pid, id, result } => self.on_answer(pid, &id, result),
            ProcessEvent::Ack { pid, id } => self.on_ack(pid, &id),
            ProcessEvent::Flow { pid, busy } => {
                if let Some(w) = self.workers.get_mut(&pid) {
                    w.flow_busy = busy;
                }
                if !busy {
                    self.soft_kill_when_ready(pid);
                }
            }
            ProcessEvent::Pong {
                pid,
                id,
                heap_used,
                heap_total,
            } => self.on_pong(pid, &id, heap_used, heap_total),
            ProcessEvent::Exited { pid, outcome } => self.on_exit(pid, outcome),
            _ => {}
        }
    }

    pub(super) fn on_exit(&mut self, pid: u32, outcome: Outcome) {
        let Some(w) = self.workers.remove(&pid) else {
            return;
        };
        self.shared.map().remove(&pid);
        let _ = self.balancer.del(&TargetId::from(pid));
        if self.slots.get(w.index).copied().flatten() == Some(pid) {
            self.slots[w.index] = None;
        }
        self.bindings.forget_worker(pid);
        self.fail_pinned_to(pid);
        let expected = matches!(
            w.leaving,
            Some(Leaving::Recycled | Leaving::Shutdown | Leaving::Killed)
        );
        self.emit(PoolEvent::WorkerExited {
            pid,
            outcome: outcome.clone(),
            expected,
        });
        if !expected {
            tracing::warn!(pool = %self.cfg.name, pid, %outcome, "worker died");
        }
        let never_ready = w.state == WorkerState::Starting;
        let stopping = self.stopping.is_some();
        // Killed by the pool for a job or on request: replaced, not counted as a crash.
        let killed_for_job = matches!(w.leaving, Some(Leaving::KilledForJob | Leaving::Killed));
        for (_, flight) in w.in_flight {
            if let Some(k) = flight.timer {
                self.timers.remove(&k);
            }
            let mut job = flight.job;
            let attempt_outcome = if flight.timed_out {
                Outcome::TimedOut
            } else if job.cancel_requested {
                Outcome::Cancelled
            } else {
                outcome.clone()
            };
            if !flight.timed_out && !job.cancel_requested && !killed_for_job {
                job.killed_workers += 1;
            }
            job.attempts.push(Attempt {
                pid,
                started: flight.started,
                ended: SystemTime::now(),
                outcome: attempt_outcome.clone(),
            });
            if job.cancel_requested {
                self.finish(job, Outcome::Cancelled);
            } else if stopping {
                self.finish(job, attempt_outcome);
            } else if job.killed_workers >= self.cfg.poison_after {
                let n = job.killed_workers;
                self.finish(
                    job,
                    failed(
                        "PoisonJob",
                        format!("the job was running on {n} workers that died; not retried"),
                    ),
                );
            } else if job.attempts.len() < job.max_attempts as usize {
                self.retry(job, attempt_outcome);
            } else {
                self.finish(job, attempt_outcome);
            }
        }
        if never_ready && self.online.is_some() {
            let stderr = w.process.stderr_tail().join("\n");
            if let Some(online) = self.online.take() {
                let _ = online.send(Err(StartError::WorkerDied { outcome, stderr }));
            }
            self.kill_all(None);
            return;
        }
        if !expected && !killed_for_job && !stopping {
            self.restarts[w.index] = self.restarts[w.index].saturating_add(1);
            self.note_failure();
        } else if killed_for_job {
            self.restarts[w.index] = self.restarts[w.index].saturating_add(1);
        }
        self.kill_next_in_sequence(pid);
        self.maybe_stop_workers();
    }

    /// Stops dispatching to a worker; it stops when its jobs are done. A replacement starts
    /// first when the reason is recycling (the pool keeps its size).
    pub(super) fn retire(&mut self, pid: u32, reason: RecycleReason) {
        let Some(w) = self.workers.get_mut(&pid) else {
            return;
        };
        if w.state != WorkerState::Ready {
            return;
        }
        w.state = WorkerState::Draining;
        let idle = w.in_flight.is_empty();
        let _ = self.balancer.del(&TargetId::from(pid));
        self.emit(PoolEvent::WorkerRecycled { pid, reason });
        if idle {
            self.stop_worker(pid, Leaving::Recycled);
        }
        // scale() starts the replacement (active workers no longer count this one).
    }

    pub(super) fn stop_worker(&mut self, pid: u32, why: Leaving) {
        let grace = self.cfg.kill_grace;
        let Some(w) = self.workers.get_mut(&pid) else {
            return;
        };
        if w.state == WorkerState::Stopping {
            return;
        }
        w.leaving.get_or_insert(why);
        w.state = WorkerState::Stopping;
        let _ = self.balancer.del(&TargetId::from(pid));
        let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        if w.process
            .send(ToWorker::Shutdown(Shutdown::new(grace_ms)))
            .is_err()
        {
            w.process.start_kill_with(libc::SIGKILL, Duration::ZERO);
        }
        self.timers.insert(
            Timer::StopGrace(pid),
            grace.saturating_add(Duration::from_secs(1)),
        );
    }

    pub(super) fn spawn_worker(&mut self) {
        let Some(index) = self.slots.iter().position(Option::is_none) else {
            return;
        };
        self.slots[index] = Some(0);
        self.starting += 1;
        let cfg = &self.cfg;
        let command = match &cfg.worker {
            WorkerKind::Node => cfg
                .runtimes
                .command(JobKind::Node, std::path::Path::new("")),
            WorkerKind::Python => cfg
                .runtimes
                .command(JobKind::Python, std::path::Path::new("")),
            WorkerKind::Program(p) => cfg.runtimes.command(JobKind::Native, p),
        };
        let jobs_dir = cfg
            .jobs_dir
            .canonicalize()
            .unwrap_or_else(|_| cfg.jobs_dir.clone());
        let mut opts = ProcessOptions::default();
        opts.kill_signal = cfg.kill_signal;
        opts.cancel_grace = cfg.kill_grace;
        opts.limits = cfg.limits;
        opts.max_frame = cfg.max_frame;
        opts.max_fds_per_run = cfg.max_fds_per_run;
        opts.fd_ack_timeout = cfg.fd_ack_timeout;
        opts.sink = Some(self.worker_tx.clone());
        // Its answers are handled on its reading task when nothing is ahead of them.
        opts.sink_hook = Some(Arc::new(super::direct::Hook {
            direct: self.direct.clone(),
            in_sink: Arc::clone(&self.in_sink),
        }));
        opts.log_sink.clone_from(&cfg.log_sink);
        let host_reader = cfg.active_host_reader().cloned();
        opts.host_read = host_reader.is_some();
        opts.event_backpressure = cfg.event_backpressure;
        opts.cgroup = cfg.cgroups;
        let args = cfg.args.clone();
        let env = cfg.env.clone();
        let env_policy = cfg.env_policy.clone();
        let concurrency = cfg.concurrency;
        let limits = cfg.limits;
        let tx = self.spawned_tx.clone();
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            let result = match command {
                Ok(cmd) => {
                    let mut cmd = cmd
                        .args(&args)
                        .jobs_dir(jobs_dir)
                        .env_policy(env_policy)
                        .limits(limits)
                        .env(offload_protocol::env::CONCURRENCY, concurrency.to_string())
                        // Tells ee-core's `isChildPoolJob()` (Node SDK) it runs in a pool.
                        .env("OFFLOAD_POOL", "1");
                    for (k, v) in &env {
                        cmd = cmd.env(k, v);
                    }
                    start_process(cmd, opts).await.map_err(|e| e.to_string())
                }
                Err(e) => Err(format!("cannot prepare the runtime: {e}")),
            };
            // Known to the registry and the supervisor at once, even if the actor that asked
            // for it is gone (`supervise.rs` kills what `shared` lists).
            if let Ok(p) = &result {
                shared.map().insert(p.pid(), p.clone());
                if let (Some(reader), Some(channel)) = (&host_reader, p.host_channel()) {
                    // Read again by the host once inputs that waited for credits may go on.
                    let again = Arc::clone(&reader.0);
                    channel.on_resume(move |ch| again(ch));
                    (reader.0)(Arc::clone(channel));
                }
            }
            if let Err(mpsc::error::SendError(SpawnResult { result: Ok(p), .. })) =
                tx.send(SpawnResult { index, result })
            {
                shared.map().remove(&p.pid());
                p.start_kill_with(libc::SIGKILL, Duration::ZERO);
            }
        });
    }

    /// Keeps the pool at `min` (with restart backoff), grows it to `max` under queue pressure,
    /// and replaces recycled workers.
    pub(super) fn scale(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        let now = Instant::now();
        let backoff = self.next_spawn_at.is_some_and(|t| now < t);
        let pressure = !self.queue.is_empty() && self.free_capacity() == 0;
        let any_starting = self.starting > 0
            || self
                .workers
                .values()
                .any(|w| w.state == WorkerState::Starting);
        loop {
            let active = self.active_workers();
            let total = self.total_processes();
            let want = if active < self.cfg.min {
                true
            } else {
                pressure && active < self.cfg.max && !any_starting && self.starting == 0
            };
            if !want || total >= self.cfg.max || (backoff && self.online.is_none()) {
                break;
            }
            if self.slots.iter().all(Option::is_some) {
                break;
            }
            self.spawn_worker();
            if active + 1 >= self.cfg.min && pressure {
                break;
            }
        }
        if self.degraded && self.live_ready() == 0 && self.online.is_none() {
            // Nothing can run: jobs must not wait forever.
            for job in std::mem::take(&mut self.queue) {
                self.finish(
                    job,
                    failed("PoolDegraded", "no worker can start: the pool is degraded"),
                );
            }
        }
    }

    pub(super) fn resize(&mut self, n: usize) {
        self.cfg.min = n;
        if n > self.cfg.max {
            self.cfg.max = n;
            self.slots.resize(n, None);
            self.restarts.resize(n, 0);
        }
        // Retire the surplus: workers still starting first, then idle ones; a busy one drains.
        let mut surplus = self.active_workers().saturating_sub(n);
        let mut candidates: Vec<(bool, usize, u32)> = self
            .workers
            .iter()
            .filter(|(_, w)| matches!(w.state, WorkerState::Starting | WorkerState::Ready))
            .map(|(&pid, w)| (w.state == WorkerState::Ready, w.in_flight.len(), pid))
            .collect();
        candidates.sort_unstable();
        for (ready, _, pid) in candidates {
            if surplus == 0 {
                break;
            }
            if ready {
                self.retire(pid, RecycleReason::Resize);
            } else {
                self.stop_worker(pid, Leaving::Recycled);
            }
            surplus -= 1;
        }
    }

    pub(super) fn live_ready(&self) -> usize {
        self.workers
            .values()
            .filter(|w| w.state == WorkerState::Ready)
            .count()
    }

    pub(super) fn free_capacity(&self) -> usize {
        self.workers
            .values()
            .filter(|w| w.state == WorkerState::Ready && !w.flow_busy && !w.sweeping)
            .map(|w| w.capacity.saturating_sub(w.in_flight.len()))
            .sum()
    }

    /// A stopping worker had its grace: it is killed.
    pub(super) fn on_stop_grace(&mut self, pid: u32) {
        if let Some(w) = self.workers.get(&pid) {
            w.process.start_kill_with(libc::SIGKILL, Duration::ZERO);
        }
    }
}

/// A run whose stream is lossy (an explicit capacity) gives its events' credits back at once:
/// its reader may read only now and then, and must not hold the worker's channel.
fn keep_credit(job: &super::Job, credit: offload_process::Credit) -> offload_process::Credit {
    if job.events_lossy {
        offload_process::Credit::default()
    } else {
        credit
    }
}
