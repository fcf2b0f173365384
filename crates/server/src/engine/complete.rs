//! Job ends: what a finished attempt does to its job ([`transition`]: success, cancel, a retry
//! with backoff while attempts remain, else dead), the completer that records ends in batches
//! (one `Store::complete` transaction; retried, never dropped) and announces them once durable,
//! and [`Engine::wait_for_end`] for those who wait for one.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use offload_process::Outcome;
use offload_store::rules::retry;
use offload_store::stats::Metric;
use offload_store::{
    now_ms, Claimed, Completion, JobId, JobRecord, JobState, Millis, StoredError, Transition,
};
use tokio::sync::{broadcast, mpsc};

use super::{Engine, EngineError};
use crate::events::{JobChange, ServerEvent};

impl Engine {
    /// An attempt of `c` that ran from `started` to `ended` ended with `outcome`: counts it,
    /// decides the job's transition and hands it to the completer.
    pub(super) fn attempt_ended(
        &self,
        c: &Claimed,
        (started, ended): (Millis, Millis),
        outcome: Outcome,
        pid: Option<u32>,
    ) {
        let wait_ms = started.saturating_sub(c.run_at);
        let run_ms = ended.saturating_sub(started);
        self.metrics
            .finished(&c.pool, outcome.kind(), ms_to_s(wait_ms), ms_to_s(run_ms));
        let then = transition(&outcome, c);
        let state = match &then {
            Transition::Succeeded { .. } => JobState::Succeeded,
            Transition::Retry { .. } => JobState::Failed,
            Transition::Dead { .. } => JobState::Dead,
            Transition::Cancelled => JobState::Cancelled,
            Transition::HandBack => JobState::Queued,
        };
        let ms = |v: Millis| u64::try_from(v).unwrap_or(0);
        self.history.ended(
            ended,
            &c.pool,
            &c.job,
            end_metric(state),
            Some((ms(wait_ms), ms(run_ms))),
        );
        let completion = Completion {
            id: c.id,
            attempt: c.attempt,
            node: self.cfg.node.clone(),
            pid,
            started_at: started,
            ended_at: ended,
            outcome: outcome.kind().to_owned(),
            then,
        };
        self.complete(completion, c, state);
    }

    /// A job claimed once more than its attempts allow (every attempt ended with its daemon
    /// gone): it goes dead without running.
    pub(super) fn attempts_exhausted(&self, c: Claimed) {
        let now = now_ms();
        let completion = Completion {
            id: c.id,
            attempt: c.attempt,
            node: self.cfg.node.clone(),
            pid: None,
            started_at: now,
            ended_at: now,
            outcome: "attempts_exhausted".into(),
            then: Transition::Dead {
                error: StoredError {
                    name: "AttemptsExhausted".into(),
                    message: format!(
                        "{} attempts were interrupted (their daemon stopped or lost its lease)",
                        c.max_attempts
                    ),
                    stack: None,
                    retry: true,
                },
            },
        };
        self.history
            .ended(now, &c.pool, &c.job, end_metric(JobState::Dead), None);
        self.complete(completion, &c, JobState::Dead);
    }

    /// An attempt of `c` stopped because this draining node passed its deadline: the job is
    /// queued again at once, the attempt not counted (`Transition::HandBack`).
    pub(super) fn handed_back(&self, c: &Claimed, started: Millis, pid: Option<u32>) {
        let completion = Completion {
            id: c.id,
            attempt: c.attempt,
            node: self.cfg.node.clone(),
            pid,
            started_at: started,
            ended_at: now_ms(),
            outcome: "handed_back".into(),
            then: Transition::HandBack,
        };
        self.complete(completion, c, JobState::Queued);
    }

    fn complete(&self, completion: Completion, c: &Claimed, state: JobState) {
        let change = JobChange {
            id: c.id,
            job: c.job.clone(),
            pool: c.pool.clone(),
            state,
            attempt: c.attempt,
        };
        self.drain.unwritten.fetch_add(1, Ordering::SeqCst);
        let _ = self.completions.send((completion, change));
    }

    /// The completer's loop (one task).
    pub(super) async fn completer(
        self: Arc<Self>,
        mut rx: mpsc::UnboundedReceiver<(Completion, JobChange)>,
    ) {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < 1000 {
                match rx.try_recv() {
                    Ok(x) => batch.push(x),
                    Err(_) => break,
                }
            }
            let (completions, changes): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let mut delay = Duration::from_millis(50);
            loop {
                match self.store.complete(completions.clone()).await {
                    Ok(()) => break,
                    Err(e) => {
                        // Never drop a completion: the job would stay `running` until its lease
                        // expires and then run again. Retry with backoff.
                        tracing::error!(error = %e, "cannot record job ends; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
            let written = changes.len();
            for change in changes {
                self.announce(change);
            }
            self.drain.unwritten.fetch_sub(written, Ordering::SeqCst);
            self.drain.ended.notify_waiters();
            // A retry may be due soon; a finished job frees capacity.
            self.notify();
        }
    }

    /// Waits for the end of a job, up to `wait`: one store read, then the job's terminal state
    /// change on the event broadcast (read at once, so a long poll never holds the broadcast's
    /// ring), then one read for the record. A lagging receiver reads the store again.
    pub(crate) async fn wait_for_end(
        &self,
        id: JobId,
        wait: Duration,
    ) -> Result<JobRecord, EngineError> {
        let mut events = self.events.subscribe();
        let deadline = Instant::now() + wait;
        let rec = self.store.get(id).await?;
        if rec.state.is_terminal() || wait.is_zero() {
            return Ok(rec);
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, events.recv()).await {
                Ok(Ok(ServerEvent::Job(j))) if j.id == id && j.state.is_terminal() => break,
                Ok(Ok(_)) => {}
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    let rec = self.store.get(id).await?;
                    if rec.state.is_terminal() {
                        return Ok(rec);
                    }
                }
                Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => break,
            }
        }
        Ok(self.store.get(id).await?)
    }
}

/// The history's count of an attempt that left its job in `state`.
fn end_metric(state: JobState) -> Metric {
    match state {
        JobState::Succeeded => Metric::Succeeded,
        JobState::Dead => Metric::Dead,
        JobState::Cancelled => Metric::Cancelled,
        _ => Metric::Failed,
    }
}

fn ms_to_s(ms: Millis) -> f64 {
    ms.max(0) as f64 / 1000.0
}

/// The error stored for an outcome that is not a success.
fn error_of(outcome: &Outcome) -> StoredError {
    match outcome {
        Outcome::Failed {
            name,
            message,
            stack,
        } => StoredError {
            name: name.clone(),
            message: message.clone(),
            stack: stack.clone(),
            retry: true,
        },
        Outcome::FailedNoRetry {
            name,
            message,
            stack,
        } => StoredError {
            name: name.clone(),
            message: message.clone(),
            stack: stack.clone(),
            retry: false,
        },
        other => StoredError {
            name: match other {
                Outcome::TimedOut => "TimedOut",
                Outcome::Killed { .. } => "Killed",
                Outcome::Crashed { .. } => "Crashed",
                Outcome::Exited { .. } => "Exited",
                Outcome::ProtocolError { .. } => "ProtocolError",
                Outcome::ResourceLimit { .. } => "ResourceLimit",
                _ => "Error",
            }
            .to_owned(),
            message: other.to_string(),
            stack: None,
            retry: true,
        },
    }
}

/// What a finished attempt does to the job: success, cancel, a retry after the job's backoff
/// (`offload_store::rules::retry`) while attempts remain, else dead. Jobs that cannot run at
/// all, and errors the job marked not retryable, are not retried.
fn transition(outcome: &Outcome, c: &Claimed) -> Transition {
    match outcome {
        Outcome::Succeeded { value } => Transition::Succeeded {
            result: value.clone(),
        },
        Outcome::Cancelled => Transition::Cancelled,
        Outcome::Failed { name, .. } if name == "NotRunnable" || name == "JobNotFound" => {
            Transition::Dead {
                error: error_of(outcome),
            }
        }
        Outcome::FailedNoRetry { .. } => Transition::Dead {
            error: error_of(outcome),
        },
        other if c.attempt < c.max_attempts => Transition::Retry {
            error: error_of(other),
            run_at: retry::retry_at(now_ms(), &c.backoff, c.attempt, rand::random()),
        },
        other => Transition::Dead {
            error: error_of(other),
        },
    }
}
