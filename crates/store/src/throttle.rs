//! Rate and concurrency limits of a queue (a pool, or every job of one name): at most `limit`
//! starts per `period_ms` (a token bucket) and at most `max_running` jobs running at once.
//!
//! The daemon hands its configured limits to the store ([`Store::set_limits`](crate::Store));
//! they are rows of the store (`queue_limits` / `offload_queue_limits`, schema v6) with the
//! bucket's state beside them, and the claim itself enforces them in its transaction: a job
//! over a limit is not started, it stays `queued`. On a shared store the limits are
//! cluster-wide: the claim locks the limit rows, so every node takes from one bucket, and the
//! running jobs it counts are every node's.
//!
//! The bucket holds at most `limit` tokens (a full bucket lets `limit` jobs start at once) and
//! refills continuously at `limit / period_ms`; a start takes one token. Tokens are kept in
//! millionths ([`MICRO`]) so both engines compute them the same way with integers
//! ([`rules::throttle`](crate::rules::throttle)).
//!
//! | field | range |
//! |---|---|
//! | `rate.limit` | `1..=`[`MAX_RATE_LIMIT`] |
//! | `rate.period_ms` | `1..=`[`MAX_PERIOD_MS`] (1 day) |
//! | `max_running` | `1..=`[`MAX_RUNNING`] |
//! | limits in all | at most [`MAX_LIMITS`] |

use serde::{Deserialize, Serialize};

use crate::limits::{human_ms, LimitError};
use crate::queues::Queue;

/// The most starts per period.
pub const MAX_RATE_LIMIT: u64 = 1_000_000;
/// The longest period of a rate (1 day).
pub const MAX_PERIOD_MS: u64 = 24 * 3600 * 1000;
/// The highest `max_running`.
pub const MAX_RUNNING: u64 = 1_000_000;
/// The most limits at once (pools and job names together).
pub const MAX_LIMITS: usize = 1_000;
/// Tokens are stored in millionths.
pub const MICRO: i64 = 1_000_000;

/// `limit` starts per `period_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    /// Starts per period (also the bucket's size: a burst of at most this many).
    pub limit: u64,
    /// The period, in ms.
    pub period_ms: u64,
}

/// The limits of one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    /// The pool or job name limited.
    pub queue: Queue,
    /// Starts per period (`None`: no rate limit).
    pub rate: Option<Rate>,
    /// Jobs running at once (`None`: no concurrency limit).
    pub max_running: Option<u64>,
}

impl Throttle {
    /// Checks the name and every number against their ranges.
    ///
    /// # Errors
    ///
    /// [`LimitError`] naming the field (`rate.limit`, `rate.period_ms`, `max_running`, `name`).
    pub fn check(&self) -> Result<(), LimitError> {
        self.queue.check()?;
        if let Some(r) = self.rate {
            if !(1..=MAX_RATE_LIMIT).contains(&r.limit) {
                return Err(LimitError::new(
                    "rate.limit",
                    r.limit,
                    format!("1..={MAX_RATE_LIMIT}"),
                ));
            }
            if !(1..=MAX_PERIOD_MS).contains(&r.period_ms) {
                return Err(LimitError::new(
                    "rate.period_ms",
                    r.period_ms,
                    format!("1..={MAX_PERIOD_MS} ({})", human_ms(MAX_PERIOD_MS)),
                ));
            }
        }
        if let Some(k) = self.max_running {
            if !(1..=MAX_RUNNING).contains(&k) {
                return Err(LimitError::new(
                    "max_running",
                    k,
                    format!("1..={MAX_RUNNING}"),
                ));
            }
        }
        if self.rate.is_none() && self.max_running.is_none() {
            return Err(LimitError::new(
                "rate",
                "absent",
                "a limit needs a rate, a max_running or both",
            ));
        }
        Ok(())
    }
}

/// Checks a whole set of limits: each one, their count, one limit per queue.
///
/// # Errors
///
/// The first [`LimitError`].
pub fn check_all(limits: &[Throttle]) -> Result<(), LimitError> {
    if limits.len() > MAX_LIMITS {
        return Err(LimitError::new(
            "limits",
            limits.len(),
            format!("at most {MAX_LIMITS}"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for l in limits {
        l.check()?;
        if !seen.insert(&l.queue) {
            return Err(LimitError::new(
                "name",
                format!("{:?}", l.queue.name),
                format!("one limit per {} name", l.queue.kind.as_str()),
            ));
        }
    }
    Ok(())
}

/// Which limit holds a queue's jobs back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldBy {
    /// No token left in the bucket.
    RateLimit,
    /// `max_running` jobs are running.
    ConcurrencyLimit,
}

impl HeldBy {
    /// Its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimit => "rate_limit",
            Self::ConcurrencyLimit => "concurrency_limit",
        }
    }
}

/// A limit and where it stands now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThrottleState {
    /// The limit.
    pub throttle: Throttle,
    /// Whole tokens in the bucket now (`None` without a rate).
    pub tokens: Option<u64>,
    /// Jobs of the queue running now (on every node).
    pub running: u64,
    /// Jobs of the queue `queued` now.
    pub queued: u64,
    /// Why the queue's queued jobs cannot start now (`None`: they can).
    pub held: Option<HeldBy>,
}

impl ThrottleState {
    /// Jobs held back by this limit now: its queued jobs while it holds them.
    pub fn held_jobs(&self) -> u64 {
        if self.held.is_some() {
            self.queued
        } else {
            0
        }
    }
}
