//! The dispatcher and the job tasks: claim as many due jobs as the pools have room for (their
//! free slots, plus `claim_ahead` jobs held here so that a freed slot starts its next job
//! without waiting for a claim), then run each in a task of its own (one attempt through its
//! pool's runner) until its end is handed to the completer (`complete.rs`). Also the
//! running-job table and cancellation.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use offload_process::Outcome;
use offload_store::{now_ms, Claimed, Demand, JobId, JobState};

use super::pools::PoolEntry;
use super::progress::{finish_progress, forward_progress, LogTo};
use super::runner::{Ended, Stop};
use super::Engine;
use crate::events::JobChange;

/// A job running here: what stops it, once its attempt has started.
pub(super) struct Running {
    stop: Option<Stop>,
}

impl Engine {
    /// The dispatcher's loop (one task). Woken by [`Engine::notify`] (a slot freed, a submit
    /// answered…) and by the store's [`queued_signal`](offload_store::Store::queued_signal)
    /// (jobs became `queued`, possibly before their submit's commit was flushed: a job may
    /// start while its submit is being flushed), else every 100 ms.
    pub(super) async fn dispatcher(self: Arc<Self>) {
        let queued = self.store.queued_signal();
        loop {
            // A draining or stopping node claims nothing.
            let pools = if self.stops_claiming() {
                Vec::new()
            } else {
                self.pools()
            };
            let demand: Vec<Demand> = pools
                .iter()
                .filter_map(|p| {
                    let n = p.claimable();
                    (n > 0).then(|| Demand {
                        pool: p.name.clone(),
                        n,
                    })
                })
                .collect();
            let mut claimed = Vec::new();
            if !demand.is_empty() {
                match self
                    .store
                    .claim(&self.cfg.node, &demand, self.cfg.lease)
                    .await
                {
                    Ok(c) => claimed = c,
                    Err(e) => tracing::error!(error = %e, "claim failed"),
                }
            }
            let got = claimed.len();
            for c in claimed {
                self.start_job(c);
            }
            if got == 0 {
                let poll = Duration::from_millis(100);
                match &queued {
                    Some(q) => {
                        tokio::select! {
                            () = self.wake.notified() => {}
                            () = q.notified() => {}
                            () = tokio::time::sleep(poll) => {}
                        }
                    }
                    None => {
                        let _ = tokio::time::timeout(poll, self.wake.notified()).await;
                    }
                }
            }
        }
    }

    /// Takes a claimed job in: runs it now if its pool has a free slot and none waits before
    /// it, else holds it until a slot frees (a job claimed ahead, `claim_ahead`).
    fn start_job(self: &Arc<Self>, c: Claimed) {
        if c.attempt > c.max_attempts {
            // Every attempt ended with its daemon gone (a job that takes its node down, say):
            // recovery re-queued it once more than allowed. Do not run it again.
            self.attempts_exhausted(c);
            return;
        }
        let Some(entry) = self.pool(&c.pool) else {
            tracing::error!(pool = %c.pool, id = %c.id, "claimed a job of an unknown pool");
            return;
        };
        // A cancel that came between the claim and now: no entry, so the attempt is stopped
        // as it launches (`set_stop`) and ends `cancelled`.
        let cancelled_early = self
            .early_cancels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(c.id);
        if !cancelled_early {
            self.running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(c.id, Running { stop: None });
        }
        self.announce(JobChange {
            id: c.id,
            job: c.job.clone(),
            pool: c.pool.clone(),
            state: JobState::Running,
            attempt: c.attempt,
        });
        let c = {
            let mut held = entry.held.lock().unwrap_or_else(|e| e.into_inner());
            if held.is_empty() && entry.in_flight.load(Ordering::Relaxed) < entry.capacity {
                entry.in_flight.fetch_add(1, Ordering::Relaxed);
                c
            } else if self.stops_claiming() {
                drop(held);
                self.hand_back_unstarted(c);
                return;
            } else {
                held.push_back(c);
                return;
            }
        };
        self.launch(entry, c);
    }

    /// Runs a claimed job in a task of its own, in a slot of `entry` already counted in its
    /// `in_flight`; when it ends, the slot goes to the next held job, if any.
    fn launch(self: &Arc<Self>, entry: Arc<PoolEntry>, c: Claimed) {
        let engine = Arc::clone(self);
        self.drain.tasks.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let launched = now_ms();
            let Ended {
                outcome,
                pid,
                started,
                ended,
            } = engine.run_one(&entry, &c).await;
            // A pool's own times when it has them (when its worker got the job, when the
            // answer came), else the task's.
            let started = started.map_or(launched, |s| s.max(launched));
            let ended = ended.map_or_else(now_ms, |e| e.max(started));
            engine.next_held(&entry);
            let cancelled = !engine.forget_running(c.id);
            engine.notify();
            let outcome = if cancelled && !outcome.is_success() {
                Outcome::Cancelled
            } else {
                outcome
            };
            if engine.take_handed_back(c.id) && !outcome.is_success() {
                engine.handed_back(&c, started, pid);
            } else {
                engine.attempt_ended(&c, (started, ended), outcome, pid);
            }
            engine.drain.tasks.fetch_sub(1, Ordering::SeqCst);
            engine.drain.ended.notify_waiters();
        });
    }

    /// A slot of `entry` freed: it goes to the first held job still wanted (one cancelled
    /// while held ends `cancelled` without running; on a draining node each is handed back),
    /// else it is free for the dispatcher.
    fn next_held(self: &Arc<Self>, entry: &Arc<PoolEntry>) {
        loop {
            let next = {
                let mut held = entry.held.lock().unwrap_or_else(|e| e.into_inner());
                let next = held.pop_front();
                if next.is_none() {
                    entry.in_flight.fetch_sub(1, Ordering::Relaxed);
                }
                next
            };
            let Some(c) = next else { return };
            if self.stops_claiming() {
                self.hand_back_unstarted(c);
                continue;
            }
            let wanted = self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&c.id);
            if wanted {
                self.launch(Arc::clone(entry), c);
                return;
            }
            // Cancelled (or its lease lost) while it waited: it never reaches a worker.
            self.cancel_unstarted(&c);
        }
    }

    /// Ends held job `id` as `cancelled`, if it is held (else it has started, or is about to).
    fn end_held(&self, id: JobId) {
        for entry in self.pools() {
            let c = {
                let mut held = entry.held.lock().unwrap_or_else(|e| e.into_inner());
                let Some(i) = held.iter().position(|c| c.id == id) else {
                    continue;
                };
                held.remove(i)
            };
            if let Some(c) = c {
                self.cancel_unstarted(&c);
                self.notify();
            }
            return;
        }
    }

    /// Hands every held job of every pool back to the queue (a drain began, or the daemon
    /// stops).
    pub(super) fn hand_back_held(&self) {
        self.hand_back_held_where(|_| true);
    }

    /// Hands the held jobs that `which` picks back to the queue (their queue was paused).
    pub(super) fn hand_back_held_where(&self, which: impl Fn(&Claimed) -> bool) {
        for entry in self.pools() {
            let mut picked = Vec::new();
            {
                let mut held = entry.held.lock().unwrap_or_else(|e| e.into_inner());
                for c in std::mem::take(&mut *held) {
                    if which(&c) {
                        picked.push(c);
                    } else {
                        held.push_back(c);
                    }
                }
            }
            for c in picked {
                self.hand_back_unstarted(c);
            }
        }
    }

    /// A claimed job that never started goes back to the queue, its attempt not counted —
    /// unless it was cancelled meanwhile: then it ends `cancelled`.
    fn hand_back_unstarted(&self, c: Claimed) {
        if self.forget_running(c.id) {
            self.handed_back(&c, now_ms(), None);
        } else {
            self.cancel_unstarted(&c);
        }
    }

    /// A claimed job cancelled before it started ends `cancelled`, never having run.
    fn cancel_unstarted(&self, c: &Claimed) {
        let now = now_ms();
        self.attempt_ended(c, (now, now), Outcome::Cancelled, None);
    }

    /// Runs one attempt of a claimed job: its outcome and its worker's pid (when one ran).
    async fn run_one(&self, entry: &PoolEntry, c: &Claimed) -> Ended {
        let timeout = c.timeout_ms.map(Duration::from_millis);
        let key = (c.id, c.attempt);
        self.logs.open(key).await;
        let ended = self.run_attempt(entry, c, timeout).await;
        // Its lines (and the cut marker) are stored before its end is recorded.
        self.logs.detach_all(key);
        self.logs.close(key).await;
        ended
    }

    /// Launches and waits for one attempt (its log opened by the caller).
    async fn run_attempt(
        &self,
        entry: &PoolEntry,
        c: &Claimed,
        timeout: Option<Duration>,
    ) -> Ended {
        let key = (c.id, c.attempt);
        // A descriptor offered for this job on this node (a line-protocol client socket).
        let offered = c
            .params
            .get(super::attach::CLIENT_FIELD)
            .and_then(serde_json::Value::as_str)
            .and_then(|token| self.attachments.take(token));
        let launched = entry
            .runner
            .launch(
                &c.job,
                c.params.clone(),
                timeout,
                (&self.logs, key),
                offered,
            )
            .await;
        let mut attempt = match launched {
            Ok(a) => a,
            Err(e) => {
                let not_runnable = Outcome::Failed {
                    name: "NotRunnable".into(),
                    message: self.client_text(&e),
                    stack: None,
                };
                return Ended::without_worker(not_runnable);
            }
        };
        self.set_stop(c.id, attempt.take_stop());
        let forward = tokio::spawn(forward_progress(
            c.id,
            Arc::clone(&self.store),
            self.events.clone(),
            attempt.take_events(),
            self.cfg.http.max_event_bytes,
            self.metrics.clone(),
            LogTo {
                logs: self.logs.clone(),
                key,
            },
        ));
        let ended = attempt.outcome().await;
        attempt.lines_read().await;
        finish_progress(c.id, &self.store, forward).await;
        ended
    }

    /// `text` with the jobs folder's absolute path removed (it is stored with the job, and
    /// clients read it): files are named relative to the jobs folder.
    fn client_text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        let canonical = self.jobs_dir.canonical().ok();
        for dir in canonical
            .iter()
            .map(|p| p.as_path())
            .chain([self.cfg.jobs.as_path()])
        {
            let dir = dir.display().to_string();
            if dir.starts_with('/') && dir.len() > 1 {
                out = out.replace(&format!("{dir}/"), "").replace(&dir, "<jobs>");
            }
        }
        out
    }

    fn set_stop(&self, id: JobId, stop: Stop) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.get_mut(&id) {
            Some(r) => r.stop = Some(stop),
            // Cancelled before it started: stop it now.
            None => stop.stop(),
        }
    }

    /// Stops a running job (after `Store::cancel` said `Requested`). Its task records the end.
    /// A job this node claimed but has not started yet is stopped as it starts; a job of
    /// another node is left to that node (it learns of the cancel from the store).
    pub(crate) fn cancel_running(&self, id: JobId) -> bool {
        let entry = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        match entry {
            Some(r) => {
                match r.stop {
                    Some(s) => s.stop(),
                    // Held, not started: it ends now, without running.
                    None => self.end_held(id),
                }
                true
            }
            None => {
                self.early_cancels
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .add(id);
                false
            }
        }
    }

    /// Removes job `id` from the running table: whether it was there (it was not: cancelled,
    /// or its lease lost).
    fn forget_running(&self, id: JobId) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
            .is_some()
    }

    /// The ids of the jobs running here (their leases are kept).
    pub(super) fn running_ids(&self) -> Vec<JobId> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }
}

/// Cancels that found no running entry on this node, kept for a while in case the job was
/// claimed here and is about to start. Bounded: at most [`EarlyCancels::MAX`] ids, each for at
/// most [`EarlyCancels::KEEP`] (a claimed job starts within moments of its claim).
#[derive(Debug, Default)]
pub(super) struct EarlyCancels {
    ids: std::collections::VecDeque<(JobId, std::time::Instant)>,
}

impl EarlyCancels {
    const MAX: usize = 4_096;
    const KEEP: std::time::Duration = std::time::Duration::from_secs(60);

    fn prune(&mut self) {
        let now = std::time::Instant::now();
        while self
            .ids
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) > Self::KEEP)
            || self.ids.len() > Self::MAX
        {
            self.ids.pop_front();
        }
    }

    fn add(&mut self, id: JobId) {
        self.ids.push_back((id, std::time::Instant::now()));
        self.prune();
    }

    /// Whether `id` was cancelled before it started here (and forgets it).
    fn take(&mut self, id: JobId) -> bool {
        self.prune();
        match self.ids.iter().position(|(i, _)| *i == id) {
            Some(at) => {
                self.ids.remove(at);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_cancels_are_taken_once_and_bounded() {
        let mut e = EarlyCancels::default();
        let a = JobId::now_v7();
        e.add(a);
        assert!(e.take(a));
        assert!(!e.take(a));
        for _ in 0..EarlyCancels::MAX + 10 {
            e.add(JobId::now_v7());
        }
        assert_eq!(e.ids.len(), EarlyCancels::MAX);
    }
}
