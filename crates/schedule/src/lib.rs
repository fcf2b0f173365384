//! Schedules for offload: when a periodic job runs and what its guard rails do.
//!
//! - [`expr`]: cron expressions (croner) in IANA time zones (chrono-tz), DST gaps and repeats
//!   handled as croner does (pinned by tests), and the minimum interval between ticks;
//! - [`policy`]: the guard rails as pure decisions — overlap (`skip`, `queue`, `replace`),
//!   pause after N consecutive failures, a wait after failures that doubles, jitter — shared
//!   by the daemon's `[[cron]]` scheduler and this crate's [`Scheduler`], and checked by a
//!   model-based property test;
//! - [`Scheduler`]: runs a periodic job on a [`ChildPool`](offload_pool::ChildPool) in a
//!   program that has no daemon (every interval or a cron expression), with the same
//!   decisions, counters, events, pause / resume / run-now and a graceful stop.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use offload_pool::{ChildPool, PoolConfig, WorkerKind};
//! use offload_schedule::{FailureBackoff, Policy, ScheduleSpec, Scheduler, Trigger};
//!
//! let pool = ChildPool::start(PoolConfig::new(WorkerKind::Node, "examples/jobs").size(1, 1)).await?;
//! let policy = Policy {
//!     pause_after_failures: Some(3),
//!     failure_backoff: Some(FailureBackoff::new(Duration::from_secs(5), Duration::from_secs(60))?),
//!     ..Policy::default()
//! };
//! let every_minute = Trigger::every(Duration::from_secs(60))?;
//! let schedule = Scheduler::start(&pool, ScheduleSpec::new("primes", "primes", serde_json::json!({"n": 100_000}), every_minute).policy(policy));
//! // … later, a graceful stop: the run in progress may finish within 10 s.
//! let status = schedule.stop(Duration::from_secs(10)).await;
//! println!("{} runs, {} failed", status.runs, status.failed);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod error;
pub mod expr;
#[cfg(test)]
mod model;
pub mod policy;
mod scheduler;
mod spec;
mod trigger;

pub use error::ScheduleError;
pub use policy::{Decision, FailureBackoff, Overlap, Policy, Status};
pub use scheduler::{Scheduled, Scheduler};
pub use spec::{ScheduleEvent, ScheduleSpec, ScheduleStatus, SkipReason};
pub use trigger::Trigger;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The current time in [`Millis`].
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
