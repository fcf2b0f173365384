//! What the library's scheduler runs and reports: [`ScheduleSpec`] (the job, its trigger and
//! policies), [`ScheduleStatus`] (its counters) and [`ScheduleEvent`]s.

use offload_pool::{JobId, RunOptions};
use offload_process::Outcome;
use serde::Serialize;
use serde_json::Value;

use crate::policy::Policy;
use crate::trigger::Trigger;
use crate::Millis;

/// A periodic job for [`Scheduler::start`](crate::Scheduler::start).
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    /// A name for logs and events.
    pub name: String,
    /// The pool's job to run.
    pub job: String,
    /// Its params, the same for every run.
    pub params: Value,
    /// When.
    pub trigger: Trigger,
    /// Overlap, pause after failures, backoff after a failure, jitter, time zone.
    pub policy: Policy,
    /// Each run's options (timeout, attempts, key).
    pub run: RunOptions,
    /// Fire once at the start, before the first tick.
    pub immediately: bool,
}

impl ScheduleSpec {
    /// `job` with `params` on `trigger`, with the default policy (skip overlapping ticks, never
    /// pause, UTC, no jitter, no backoff).
    pub fn new(
        name: impl Into<String>,
        job: impl Into<String>,
        params: Value,
        trigger: Trigger,
    ) -> Self {
        Self {
            name: name.into(),
            job: job.into(),
            params,
            trigger,
            policy: Policy::default(),
            run: RunOptions::default(),
            immediately: false,
        }
    }

    /// With `policy`.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// With each run's options.
    pub fn run_options(mut self, run: RunOptions) -> Self {
        self.run = run;
        self
    }

    /// Fire once at the start too.
    pub fn immediately(mut self, yes: bool) -> Self {
        self.immediately = yes;
        self
    }
}

/// A schedule's counters, as [`Scheduled::status`](crate::Scheduled::status) shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScheduleStatus {
    /// Runs started.
    pub runs: u64,
    /// Runs that succeeded.
    pub succeeded: u64,
    /// Runs that failed (any outcome but success and a cancel by the scheduler).
    pub failed: u64,
    /// Ticks that fired nothing (overlap, backoff, pause, or missed while late).
    pub skipped: u64,
    /// Failed runs since the last success (or resume).
    pub consecutive_failures: u32,
    /// When a run last succeeded.
    pub last_success_at: Option<Millis>,
    /// When a run last failed.
    pub last_failure_at: Option<Millis>,
    /// How the last failed run ended.
    pub last_error: Option<String>,
    /// Why it is paused (`manual`, or the failures that paused it); `None`: it is not.
    pub paused: Option<String>,
    /// Runs not finished yet.
    pub active: usize,
    /// The next tick.
    pub next_at: Option<Millis>,
    /// It was stopped.
    pub stopped: bool,
}

/// Why a tick fired nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The previous run is unfinished (`Overlap::Skip`).
    Overlap,
    /// The wait after the last failure is not over.
    Backoff,
    /// The schedule is paused.
    Paused,
    /// Ticks missed while the scheduler was late (the process was suspended, the clock
    /// jumped): only the last fires.
    Missed,
}

/// Something a schedule did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ScheduleEvent {
    /// A run started (its job was submitted to the pool).
    Started {
        /// The tick it belongs to.
        tick: Millis,
        /// The pool's job.
        job: JobId,
    },
    /// A tick fired nothing.
    Skipped {
        /// The tick.
        tick: Millis,
        /// Why.
        reason: SkipReason,
    },
    /// A run succeeded.
    Succeeded {
        /// The pool's job.
        job: JobId,
        /// Its result.
        value: Value,
    },
    /// A run failed (or the pool refused it: `job` is `None`).
    Failed {
        /// The pool's job.
        job: Option<JobId>,
        /// How it ended.
        error: String,
        /// Failed runs in a row now.
        consecutive_failures: u32,
    },
    /// A run was cancelled by the scheduler (`Overlap::Replace`, or a stop past its deadline).
    Cancelled {
        /// The pool's job, if it was submitted.
        job: Option<JobId>,
    },
    /// The schedule paused itself or was paused.
    Paused {
        /// `manual`, or the failures that paused it.
        reason: String,
    },
    /// It was resumed (its consecutive failures start again from zero).
    Resumed,
    /// It stopped: no tick fires any more and no run is left.
    Stopped,
}

/// How one run ended, as the scheduler counts it.
#[derive(Debug)]
pub(crate) enum RunEnd {
    /// The pool answered with this outcome.
    Ended(JobId, Outcome),
    /// The pool refused the submit.
    Refused(String),
    /// Cancelled by the scheduler before it was submitted.
    Dropped,
}
