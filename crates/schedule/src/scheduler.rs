//! [`Scheduler`]: runs a [`ScheduleSpec`] on a [`ChildPool`] in the program's own process, with
//! the same guard rails as the daemon's `[[cron]]` (the decisions of `policy.rs`). One task
//! per schedule owns its state; [`Scheduled`] sends it commands and reads its status.
//!
//! Each due tick is decided by [`decide`]: fire, replace (cancel the unfinished run first),
//! skip (overlap, backoff after a failure, pause), or pause (after `pause_after_failures`
//! consecutive failures). Runs that end are counted before the next decision; a run the
//! scheduler cancels (replace, stop) is neither a success nor a failure. Ticks missed while the
//! scheduler could not run (a suspended process, a clock jump) fire once, not once each.

use std::collections::HashMap;
use std::time::Duration;

use offload_pool::ChildPool;
use offload_process::{timer, Outcome};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::policy::{decide, should_pause, Decision, Status};
use crate::spec::{RunEnd, ScheduleEvent, ScheduleSpec, ScheduleStatus, SkipReason};
use crate::{now_ms, Millis};

/// Events kept for a subscriber that does not read (the oldest are dropped past this).
const EVENTS: usize = 256;

enum Command {
    Pause,
    Resume,
    RunNow,
    Stop {
        deadline: Duration,
        done: oneshot::Sender<ScheduleStatus>,
    },
}

/// Starts schedules on a pool.
#[derive(Debug, Clone, Copy)]
pub struct Scheduler;

impl Scheduler {
    /// Starts `spec` on `pool` (the scheduler keeps a clone of the pool). Must be called
    /// inside a Tokio runtime.
    pub fn start(pool: &ChildPool, spec: ScheduleSpec) -> Scheduled {
        let (tx, rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(EVENTS);
        let anchor = now_ms();
        let first = if spec.immediately {
            Some(anchor)
        } else {
            spec.trigger.next_after(spec.policy.tz, anchor, anchor)
        };
        let status = ScheduleStatus {
            next_at: first,
            ..ScheduleStatus::default()
        };
        let (status_tx, status_rx) = watch::channel(status.clone());
        let actor = Actor {
            pool: pool.clone(),
            spec,
            anchor,
            status,
            runs: JoinSet::new(),
            cancels: HashMap::new(),
            events: events.clone(),
            status_tx,
        };
        tokio::spawn(actor.run(rx, first));
        Scheduled {
            tx,
            status: status_rx,
            events,
        }
    }
}

/// A running schedule. Dropping it stops the schedule and cancels its unfinished runs; use
/// [`stop`](Self::stop) to let them finish first.
#[derive(Debug)]
pub struct Scheduled {
    tx: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<ScheduleStatus>,
    events: broadcast::Sender<ScheduleEvent>,
}

impl Scheduled {
    /// Its counters now.
    pub fn status(&self) -> ScheduleStatus {
        self.status.borrow().clone()
    }

    /// Its events from now on (bounded: a subscriber that does not read loses the oldest).
    pub fn events(&self) -> broadcast::Receiver<ScheduleEvent> {
        self.events.subscribe()
    }

    /// Pauses it: ticks fire nothing until [`resume`](Self::resume); unfinished runs go on.
    pub fn pause(&self) {
        let _ = self.tx.send(Command::Pause);
    }

    /// Resumes it; its consecutive failures start again from zero.
    pub fn resume(&self) {
        let _ = self.tx.send(Command::Resume);
    }

    /// Starts one run now, whatever the overlap policy, the backoff or a pause say (an
    /// explicit request).
    pub fn run_now(&self) {
        let _ = self.tx.send(Command::RunNow);
    }

    /// Stops it: no tick fires any more; unfinished runs may finish within `deadline`, then
    /// they are cancelled (the pool stops them: cancel, grace, kill). Returns the final counters.
    pub async fn stop(self, deadline: Duration) -> ScheduleStatus {
        let (done, answer) = oneshot::channel();
        if self.tx.send(Command::Stop { deadline, done }).is_err() {
            return self.status();
        }
        let last = self.status();
        answer.await.unwrap_or(last)
    }
}

struct Actor {
    pool: ChildPool,
    spec: ScheduleSpec,
    anchor: Millis,
    status: ScheduleStatus,
    runs: JoinSet<(u64, RunEnd)>,
    cancels: HashMap<u64, CancellationToken>,
    events: broadcast::Sender<ScheduleEvent>,
    status_tx: watch::Sender<ScheduleStatus>,
}

impl Actor {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>, first: Option<Millis>) {
        let mut next_run = 0u64;
        let mut next_at = first;
        loop {
            self.status.next_at = next_at;
            self.publish();
            let wait = next_at.map_or(timer::MAX_TIMER, |at| {
                Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0))
            });
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Pause) => self.pause("manual".to_owned()),
                    Some(Command::Resume) => {
                        if self.status.paused.take().is_some() {
                            self.status.consecutive_failures = 0;
                            self.emit(ScheduleEvent::Resumed);
                        }
                    }
                    Some(Command::RunNow) => self.fire(&mut next_run, now_ms()),
                    Some(Command::Stop { deadline, done }) => {
                        self.stop(deadline).await;
                        let _ = done.send(self.status.clone());
                        return;
                    }
                    None => {
                        self.stop(Duration::ZERO).await;
                        return;
                    }
                },
                Some(ended) = self.runs.join_next(), if !self.runs.is_empty() => {
                    if let Ok((id, end)) = ended {
                        self.count(id, end);
                    }
                    if should_pause(&self.spec.policy, self.decision_status()) {
                        let n = self.status.consecutive_failures;
                        self.pause(format!("{n} consecutive failures"));
                    }
                }
                () = tokio::time::sleep(timer::clamp(wait)), if next_at.is_some() => {
                    let now = now_ms();
                    let Some(mut tick) = next_at else { continue };
                    // Ticks missed while late fire once: the last one due.
                    while let Some(later) = self.next_tick(tick).filter(|t| *t <= now) {
                        self.skipped(tick, SkipReason::Missed);
                        tick = later;
                    }
                    next_at = self.next_tick(tick.max(now));
                    self.tick(&mut next_run, tick, now);
                }
            }
        }
    }

    fn next_tick(&self, after: Millis) -> Option<Millis> {
        self.spec
            .trigger
            .next_after(self.spec.policy.tz, self.anchor, after)
    }

    fn decision_status(&self) -> Status {
        Status {
            paused: self.status.paused.is_some(),
            consecutive_failures: self.status.consecutive_failures,
            active: !self.runs.is_empty(),
            last_failure_at: self.status.last_failure_at,
        }
    }

    fn tick(&mut self, next_run: &mut u64, tick: Millis, now: Millis) {
        match decide(&self.spec.policy, self.decision_status(), now) {
            Decision::Fire => self.fire(next_run, tick),
            Decision::Replace => {
                for token in self.cancels.values() {
                    token.cancel();
                }
                self.fire(next_run, tick);
            }
            Decision::SkipOverlap => self.skipped(tick, SkipReason::Overlap),
            Decision::SkipBackoff => self.skipped(tick, SkipReason::Backoff),
            Decision::Paused => self.skipped(tick, SkipReason::Paused),
            Decision::Pause => {
                let n = self.status.consecutive_failures;
                self.pause(format!("{n} consecutive failures"));
                self.skipped(tick, SkipReason::Paused);
            }
        }
    }

    /// Starts one run: after its jitter, submitted to the pool; its end comes back through
    /// `runs`.
    fn fire(&mut self, next_run: &mut u64, tick: Millis) {
        let id = *next_run;
        *next_run += 1;
        let cancel = CancellationToken::new();
        self.cancels.insert(id, cancel.clone());
        self.status.runs += 1;
        let delay = self.spec.policy.jitter_delay(&mut rand::rng());
        let (pool, spec, events) = (self.pool.clone(), self.spec.clone(), self.events.clone());
        self.runs.spawn(async move {
            let end = run_once(pool, spec, delay, cancel, tick, events).await;
            (id, end)
        });
    }

    fn count(&mut self, id: u64, end: RunEnd) {
        let cancelled = self.cancels.remove(&id).is_some_and(|t| t.is_cancelled());
        let now = now_ms();
        match end {
            RunEnd::Ended(job, Outcome::Succeeded { value }) => {
                self.status.succeeded += 1;
                self.status.consecutive_failures = 0;
                self.status.last_success_at = Some(now);
                self.emit(ScheduleEvent::Succeeded { job, value });
            }
            // Whatever a run the scheduler cancelled ended with, it is not a failure.
            RunEnd::Ended(job, _) if cancelled => {
                self.emit(ScheduleEvent::Cancelled { job: Some(job) });
            }
            RunEnd::Dropped => self.emit(ScheduleEvent::Cancelled { job: None }),
            RunEnd::Ended(job, outcome) => self.failed(Some(job), outcome.to_string(), now),
            RunEnd::Refused(error) => self.failed(None, error, now),
        }
    }

    fn failed(&mut self, job: Option<offload_pool::JobId>, error: String, now: Millis) {
        self.status.failed += 1;
        self.status.consecutive_failures = self.status.consecutive_failures.saturating_add(1);
        self.status.last_failure_at = Some(now);
        self.status.last_error = Some(error.clone());
        tracing::warn!(schedule = %self.spec.name, %error, failures = self.status.consecutive_failures, "scheduled run failed");
        self.emit(ScheduleEvent::Failed {
            job,
            error,
            consecutive_failures: self.status.consecutive_failures,
        });
    }

    fn pause(&mut self, reason: String) {
        if self.status.paused.is_none() {
            tracing::warn!(schedule = %self.spec.name, %reason, "schedule paused");
            self.status.paused = Some(reason.clone());
            self.emit(ScheduleEvent::Paused { reason });
        }
    }

    fn skipped(&mut self, tick: Millis, reason: SkipReason) {
        self.status.skipped += 1;
        self.emit(ScheduleEvent::Skipped { tick, reason });
    }

    /// No more ticks; unfinished runs get `deadline`, then are cancelled; waits for every end.
    async fn stop(&mut self, deadline: Duration) {
        let until = timer::deadline_in(deadline);
        while !self.runs.is_empty() {
            match tokio::time::timeout_at(until, self.runs.join_next()).await {
                Ok(Some(Ok((id, end)))) => self.count(id, end),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        for token in self.cancels.values() {
            token.cancel();
        }
        while let Some(ended) = self.runs.join_next().await {
            if let Ok((id, end)) = ended {
                self.count(id, end);
            }
        }
        self.status.next_at = None;
        self.status.stopped = true;
        self.publish();
        self.emit(ScheduleEvent::Stopped);
    }

    fn emit(&self, event: ScheduleEvent) {
        let _ = self.events.send(event);
        self.publish();
    }

    fn publish(&self) {
        let mut status = self.status.clone();
        status.active = self.runs.len();
        self.status_tx.send_replace(status);
    }
}

/// One run: waits its jitter, submits, waits for the end; a cancel before the submit drops it,
/// after it cancels the job in the pool and waits for its end.
async fn run_once(
    pool: ChildPool,
    spec: ScheduleSpec,
    delay: Duration,
    cancel: CancellationToken,
    tick: Millis,
    events: broadcast::Sender<ScheduleEvent>,
) -> RunEnd {
    if !delay.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = cancel.cancelled() => return RunEnd::Dropped,
        }
    }
    if cancel.is_cancelled() {
        return RunEnd::Dropped;
    }
    let handle = match pool.run_with(&spec.job, spec.params, spec.run).await {
        Ok(handle) => handle,
        Err(e) => return RunEnd::Refused(e.to_string()),
    };
    let job = handle.id();
    let _ = events.send(ScheduleEvent::Started { tick, job });
    let canceller = handle.canceller();
    let result = handle.result();
    tokio::pin!(result);
    let result = tokio::select! {
        r = &mut result => r,
        () = cancel.cancelled() => {
            canceller.cancel();
            result.await
        }
    };
    RunEnd::Ended(job, result.outcome)
}
