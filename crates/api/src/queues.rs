//! Paused queues: a pool, or every job of one name, that claims nothing until resumed.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Millis;

/// What a pause applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    /// Every job of a pool.
    Pool,
    /// Every job of one name, whatever its pool.
    Job,
}

/// The answer to a pause or a resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueStatus {
    /// Pool or job name.
    pub kind: QueueKind,
    /// The pool's or the job's name.
    pub name: String,
    /// Whether the queue is paused now.
    pub paused: bool,
    /// Whether this request changed it (`false`: it was so already).
    pub changed: bool,
}

/// A paused queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PausedQueue {
    /// Pool or job name.
    pub kind: QueueKind,
    /// The pool's or the job's name.
    pub name: String,
    /// When it was paused.
    pub paused_at: Millis,
}

/// `GET /v1/queues`: every paused queue (at most 1,000), pools first, then by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PausedQueueList {
    /// The paused queues.
    pub queues: Vec<PausedQueue>,
}
