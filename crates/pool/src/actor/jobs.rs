//! The jobs: the central queue, dispatch to a worker the balancer picks (with key affinity),
//! answers, cancels, timeouts and retries. A job leaves this file with exactly one
//! [`JobResult`](crate::JobResult) (`finish`), whatever happens to its workers.

use std::time::{Duration, Instant, SystemTime};

use offload_balance::{Pick, PickContext, TargetId};
use offload_process::{ErrorInfo, Outcome};
use offload_protocol::{Cancel, RunRef, ToWorker};
use serde_json::Value;

use super::{
    failed, parse_wire_id, pid_of, wire_id, Actor, InFlight, Job, Leaving, Submission, Timer,
};
use crate::types::{Attempt, JobEvent, JobId, JobResult, RecycleReason, WorkerState};

impl Actor {
    pub(super) fn on_submit(&mut self, s: Submission) {
        // Descriptors can be passed once, and a pinned job's worker cannot run it again after
        // it died: such a job has one attempt.
        let one_attempt = !s.fds.is_empty() || s.opts.worker.is_some();
        let fds_optional = s.opts.fds_optional;
        let job = Job {
            id: s.id,
            name: s.name,
            path: s.path,
            params: s.params,
            key: s.opts.key,
            worker: s.opts.worker,
            args: s.opts.args,
            on_start: s.opts.on_start,
            timeout: s.opts.timeout.or(self.cfg.job_timeout),
            max_attempts: if one_attempt {
                1
            } else {
                s.opts
                    .max_attempts
                    .unwrap_or(self.cfg.retry.max_attempts)
                    .max(1)
            },
            attempts: Vec::new(),
            killed_workers: 0,
            cancel_requested: false,
            reply: Some(s.reply),
            events: s.events,
            events_lossy: s.opts.events_capacity.is_some(),
            permit: Some(s.permit),
            fds: s.fds,
            fds_optional,
            streams: s.opts.streams,
        };
        if self.stopping.is_some() {
            return self.finish(job, failed("ShuttingDown", "the pool is shutting down"));
        }
        self.queue.push_back(job);
    }

    pub(super) fn on_cancel(&mut self, id: JobId) {
        if let Some(pos) = self.queue.iter().position(|j| j.id == id) {
            if let Some(job) = self.queue.remove(pos) {
                self.finish(job, Outcome::Cancelled);
            }
            return;
        }
        if let Some(job) = self.delayed.remove(&id) {
            return self.finish(job, Outcome::Cancelled);
        }
        let grace = self.cfg.cancel_grace;
        let found = self
            .workers
            .iter_mut()
            .find_map(|(pid, w)| w.in_flight.get_mut(&id).map(|f| (*pid, f, &w.process)));
        if let Some((pid, flight, process)) = found {
            if !flight.job.cancel_requested {
                flight.job.cancel_requested = true;
                let _ = process.send(ToWorker::Cancel(Cancel::new(wire_id(id).to_string())));
                if let Some(k) = flight.timer.take() {
                    self.timers.remove(&k);
                }
                flight.timer = Some(self.timers.insert(Timer::CancelGrace { id, pid }, grace));
            }
        }
    }

    pub(super) fn on_answer(&mut self, pid: u32, id: &str, result: Result<Value, ErrorInfo>) {
        let Some(job_id) = parse_wire_id(id) else {
            return;
        };
        let Some(w) = self.workers.get_mut(&pid) else {
            return;
        };
        let Some(flight) = w.in_flight.remove(&job_id) else {
            tracing::debug!(pool = %self.cfg.name, pid, id, "late answer ignored");
            return;
        };
        if let Some(key) = bound_key(&flight.job) {
            self.bindings.ended(key, pid);
        }
        if let Some(k) = flight.timer {
            self.timers.remove(&k);
        }
        w.jobs_done += 1;
        if w.in_flight.is_empty() {
            w.idle_since = Instant::now();
        }
        let timed_out = flight.timed_out;
        let mut job = flight.job;
        let outcome = match result {
            Ok(value) => Outcome::Succeeded { value },
            Err(_) if job.cancel_requested => Outcome::Cancelled,
            Err(e) if timed_out || e.name == "DeadlineExceeded" => Outcome::TimedOut,
            Err(e) => {
                w.failures += 1;
                w.last_error = Some(e.to_string());
                Outcome::failed(e)
            }
        };
        let recycle = self
            .cfg
            .recycle
            .after_jobs
            .is_some_and(|n| w.jobs_done >= n && w.state == WorkerState::Ready);
        let drained = w.in_flight.is_empty() && w.state == WorkerState::Draining;
        job.attempts.push(Attempt {
            pid,
            started: flight.started,
            ended: SystemTime::now(),
            outcome: outcome.clone(),
        });
        if outcome.is_success() {
            self.consecutive_failures = 0;
        }
        let retry = match &outcome {
            Outcome::TimedOut => true,
            Outcome::Failed { .. } => self.cfg.retry.on_error,
            _ => false,
        };
        if retry && job.attempts.len() < job.max_attempts as usize && self.stopping.is_none() {
            self.retry(job, outcome);
        } else {
            self.finish(job, outcome);
        }
        if recycle {
            self.retire(pid, RecycleReason::Jobs);
        } else if drained {
            self.stop_worker(pid, Leaving::Recycled);
        } else {
            self.sweep_if_idle(pid);
        }
        self.maybe_stop_workers();
    }

    /// Worker `pid` is gone: the queued jobs pinned to it fail now (`dispatch` would find
    /// them only once a slot is free).
    pub(super) fn fail_pinned_to(&mut self, pid: u32) {
        if !self.queue.iter().any(|j| j.worker == Some(pid)) {
            return;
        }
        let (gone, kept): (Vec<Job>, Vec<Job>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|j| j.worker == Some(pid));
        self.queue = kept.into();
        for job in gone {
            self.finish(job, no_such_worker(pid));
        }
    }

    /// Whether worker `pid` exists and will take jobs (it starts or is ready).
    fn takes_jobs(&self, pid: u32) -> bool {
        self.workers
            .get(&pid)
            .is_some_and(|w| matches!(w.state, WorkerState::Starting | WorkerState::Ready))
    }

    /// The worker bound to `key`, binding one (chosen by the algorithm) when there is none.
    pub(super) fn binding(&mut self, key: &str) -> Option<u32> {
        if let Some(pid) = self.bindings.get(key) {
            if self
                .workers
                .get(&pid)
                .is_some_and(|w| matches!(w.state, WorkerState::Ready | WorkerState::Draining))
            {
                return Some(pid);
            }
            self.bindings.unbind(key);
        }
        let workers = &self.workers;
        let ready = |id: &TargetId| {
            pid_of(id).is_some_and(|pid| {
                workers
                    .get(&pid)
                    .is_some_and(|w| w.state == WorkerState::Ready)
            })
        };
        let ctx = PickContext::new().with_key(key).with_filter(&ready);
        // Choose among all ready workers, full or not: binding is not dispatching.
        let chosen = self
            .balancer
            .pick_one(&ctx)
            .map(|p| p.id().clone())
            .or_else(|| {
                // Everyone is at capacity: spread bindings by how many each already has.
                self.balancer
                    .targets()
                    .map(|t| t.id.clone())
                    .filter(&ready)
                    .min_by_key(|id| pid_of(id).map_or(usize::MAX, |p| self.bindings.count(p)))
            })?;
        let pid = pid_of(&chosen)?;
        self.bindings.bind(key, pid);
        Some(pid)
    }

    pub(super) fn dispatch(&mut self) {
        // `spread_first`: no second job on a busy worker while a worker is missing.
        let hold_busy = self.cfg.spread_first && self.live_ready() < self.cfg.min;
        let mut i = 0;
        while i < self.queue.len() {
            if self.free_capacity() == 0 {
                break;
            }
            let pinned = if let Some(pid) = self.queue[i].worker {
                if !self.takes_jobs(pid) {
                    if let Some(job) = self.queue.remove(i) {
                        self.finish(job, no_such_worker(pid));
                    }
                    continue;
                }
                Some(pid)
            } else {
                match self.queue[i].key.clone() {
                    Some(key) => match self.binding(&key) {
                        Some(pid) => Some(pid),
                        None => break, // no ready worker at all
                    },
                    None => None,
                }
            };
            let workers = &self.workers;
            let eligible = |id: &TargetId| {
                pid_of(id).is_some_and(|pid| {
                    pinned.is_none_or(|p| p == pid)
                        && workers.get(&pid).is_some_and(|w| {
                            w.state == WorkerState::Ready
                                && !w.flow_busy
                                && !w.sweeping
                                && (!hold_busy || w.in_flight.is_empty())
                        })
                })
            };
            let mut ctx = PickContext::new().with_filter(&eligible);
            if let Some(p) = pinned {
                ctx = ctx.with_key(p);
            }
            let Some(pick) = self.balancer.pick_one(&ctx) else {
                if pinned.is_some() {
                    i += 1;
                    continue;
                }
                break;
            };
            let Some(pid) = pid_of(pick.id()) else {
                break;
            };
            let Some(mut job) = self.queue.remove(i) else {
                break;
            };
            job.permit = None;
            self.send_to(pid, job, pick);
        }
        // One write per worker for everything dispatched in this round.
        let mut to_flush = std::mem::take(&mut self.to_flush);
        for pid in to_flush.drain(..) {
            let flushed = self.workers.get(&pid).map(|w| w.process.flush());
            if matches!(flushed, Some(Err(_))) {
                // Its jobs of this round are in flight on it: its exit retries or fails them.
                self.channel_broken(pid);
            }
        }
        self.to_flush = to_flush;
    }

    /// A worker's channel is closed or broken (the process is gone, or it closed its end):
    /// it takes no more jobs (else `dispatch` would pick it again and again), it is killed,
    /// and its exit decides the fate of the jobs it holds.
    fn channel_broken(&mut self, pid: u32) {
        let Some(w) = self.workers.get_mut(&pid) else {
            return;
        };
        if w.state == WorkerState::Stopping {
            return;
        }
        tracing::warn!(pool = %self.cfg.name, pid, "the worker's channel is closed; killing it");
        w.state = WorkerState::Stopping;
        let _ = self.balancer.del(&TargetId::from(pid));
        w.process.start_kill_for_closed_channel();
    }

    pub(super) fn send_to(&mut self, pid: u32, mut job: Job, pick: Pick) {
        if let Some(hook) = &job.on_start {
            (hook.0)(pid);
        }
        if !job.fds.is_empty() {
            // Through the worker's actor: each descriptor acknowledged, then the run
            // (`docs/protocol.md` §9). A refusal later comes back as the run's error answer.
            let mut run = offload_protocol::Run::new(
                wire_id(job.id).to_string(),
                job.name.to_string(),
                job.params.to_value(),
            );
            run.path = job.path.as_deref().map(str::to_owned);
            run.args = job.args.clone();
            run.deadline = job.timeout.map(offload_process::timer::epoch_ms_in);
            run.streams = job.streams;
            let fds = std::mem::take(&mut job.fds);
            let started = match self.workers.get(&pid) {
                Some(w) if job.fds_optional => w.process.start_run_offering_fds(run, fds),
                Some(w) => w.process.start_run_with_fds(run, fds, None),
                None => Err(offload_process::FdError::ChannelClosed),
            };
            if let Err(e) = started {
                return self.finish(job, failed(e.name(), e.to_string()));
            }
            return self.in_flight(pid, job, pick);
        }
        // Encoded straight into the worker's write buffer from the job (no copy of the
        // params, no `String` for the id); `dispatch` writes every worker's batch at its end.
        let run = RunRef::new(wire_id(job.id), &job.name, &job.params)
            .with_path(job.path.as_deref())
            .with_args(job.args.as_deref())
            .with_deadline(job.timeout.map(offload_process::timer::epoch_ms_in));
        let sent = match self.workers.get(&pid) {
            Some(w) => match w.process.queue(&run) {
                Ok(()) => true,
                Err(offload_process::SendError::Encode(e)) => {
                    // Too large for a frame: no worker could take it.
                    let outcome = failed("FrameTooLarge", e.to_string());
                    return self.finish(job, outcome);
                }
                Err(_) => false,
            },
            None => false,
        };
        if !sent {
            // This one tries another worker.
            self.channel_broken(pid);
            self.queue.push_front(job);
            return;
        }
        if !self.to_flush.contains(&pid) {
            self.to_flush.push(pid);
        }
        self.in_flight(pid, job, pick);
    }

    /// The job is on its way to `pid`: its timer, its `Started` event, its in-flight entry.
    fn in_flight(&mut self, pid: u32, job: Job, pick: Pick) {
        let timer = job
            .timeout
            .map(|t| self.timers.insert(Timer::JobTimeout { id: job.id, pid }, t));
        let attempt = u32::try_from(job.attempts.len() + 1).unwrap_or(u32::MAX);
        let id = job.id;
        if job.events.is_some() || self.events.receiver_count() > 0 {
            self.emit_job(&job, JobEvent::Started { id, pid, attempt });
        }
        if let Some(key) = bound_key(&job) {
            // Kept bound while it runs (`bindings.rs`); its worker's exit forgets it anyway.
            self.bindings.started(key, pid);
        }
        if let Some(w) = self.workers.get_mut(&pid) {
            w.in_flight.insert(
                id,
                InFlight {
                    job,
                    _pick: pick,
                    started: SystemTime::now(),
                    timer,
                    timed_out: false,
                },
            );
        }
    }

    pub(super) fn retry(&mut self, job: Job, outcome: Outcome) {
        let retry_no = u32::try_from(job.attempts.len()).unwrap_or(u32::MAX);
        let delay = self.cfg.retry.delay(retry_no, rand::random::<f64>());
        self.emit_job(
            &job,
            JobEvent::Retrying {
                id: job.id,
                outcome,
                delay,
            },
        );
        self.timers.insert(Timer::Retry(job.id), delay);
        self.delayed.insert(job.id, job);
    }

    pub(super) fn finish(&self, mut job: Job, outcome: Outcome) {
        if job.events.is_some() || self.events.receiver_count() > 0 {
            self.emit_job(
                &job,
                JobEvent::Finished {
                    id: job.id,
                    outcome: outcome.clone(),
                },
            );
        }
        if let Some(reply) = job.reply.take() {
            // Delivered once the state's lock is released (`direct.rs`, invariant 3).
            let result = JobResult {
                id: job.id,
                outcome,
                attempts: std::mem::take(&mut job.attempts),
            };
            self.replies.borrow_mut().push((reply, result));
        }
    }

    /// A job's attempt ran past its timeout: it gets a cancel and the cancel grace.
    pub(super) fn on_job_timeout(&mut self, id: JobId, pid: u32) {
        let grace = self.cfg.cancel_grace;
        let Some(w) = self.workers.get_mut(&pid) else {
            return;
        };
        let Some(flight) = w.in_flight.get_mut(&id) else {
            return;
        };
        flight.timed_out = true;
        tracing::info!(pool = %self.cfg.name, job = id, pid, "job timed out; cancelling");
        let _ = w
            .process
            .send(ToWorker::Cancel(Cancel::new(wire_id(id).to_string())));
        flight.timer = Some(self.timers.insert(Timer::CancelGrace { id, pid }, grace));
    }

    /// A cancelled or timed-out job had its grace and still runs: its worker is killed (and
    /// replaced, not counted as a crash).
    pub(super) fn on_cancel_grace(&mut self, id: JobId, pid: u32) {
        let Some(w) = self.workers.get_mut(&pid) else {
            return;
        };
        let Some(flight) = w.in_flight.get_mut(&id) else {
            return;
        };
        flight.timer = None;
        tracing::warn!(pool = %self.cfg.name, job = id, pid, "job ignored its cancel; killing its worker");
        w.leaving.get_or_insert(Leaving::KilledForJob);
        w.state = WorkerState::Stopping;
        let _ = self.balancer.del(&TargetId::from(pid));
        w.process.start_kill_with(libc::SIGKILL, Duration::ZERO);
    }

    /// A delayed retry is due: the job goes to the front of the queue.
    pub(super) fn on_retry_due(&mut self, id: JobId) {
        if let Some(job) = self.delayed.remove(&id) {
            self.queue.push_front(job);
        }
    }
}

/// The end of a job pinned to worker `pid` that will never take it.
fn no_such_worker(pid: u32) -> Outcome {
    failed(
        "NoSuchWorker",
        format!("the pool has no worker with pid {pid} that takes jobs (it is gone, draining or stopping)"),
    )
}

/// The affinity key a job went to its worker by (a pinned job goes by its pid instead).
fn bound_key(job: &Job) -> Option<&str> {
    job.key.as_deref().filter(|_| job.worker.is_none())
}
