//! Rate and concurrency limits of pools and job names (`GET /v1/limits`), and why a queued job
//! is held back (`held` in a job's view).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::QueueKind;

/// `limit` starts per `period_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rate {
    /// Starts per period, also the bucket's size (1..=1,000,000).
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub limit: u64,
    /// The period, in ms (1..=86,400,000: one day).
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub period_ms: u64,
}

/// What holds a queue's jobs back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HeldReason {
    /// The rate limit's bucket is empty: the next start waits for a token.
    RateLimit,
    /// `max_running` jobs are running: the next start waits for one to end.
    ConcurrencyLimit,
}

/// Why a queued job does not start now: the limit that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Held {
    /// Which limit.
    pub reason: HeldReason,
    /// The limit's queue: its pool or its job name.
    pub kind: QueueKind,
    /// The pool's or the job's name.
    pub name: String,
}

/// A limit and where it stands now (on every node of a shared store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Limit {
    /// A pool or a job name.
    pub kind: QueueKind,
    /// The pool's or the job's name.
    pub name: String,
    /// Starts per period (`null`: no rate limit).
    pub rate: Option<Rate>,
    /// Jobs running at once at most (`null`: no such limit).
    pub max_running: Option<u64>,
    /// Whole tokens in the bucket now (`null` without a rate).
    pub tokens: Option<u64>,
    /// Its jobs running now.
    pub running: u64,
    /// Its jobs queued now.
    pub queued: u64,
    /// Its queued jobs held back now (all of them while `held` is set, else 0).
    pub held_jobs: u64,
    /// What holds its jobs back now (`null`: nothing).
    pub held: Option<HeldReason>,
}

/// `GET /v1/limits`: every limit of the configuration, pools first, then by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LimitList {
    /// The limits.
    pub limits: Vec<Limit>,
}
