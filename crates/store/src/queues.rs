//! Paused queues: a pool, or every job of one name, that claims nothing until resumed.
//!
//! A pause is a row in the store (`queue_pauses` / `offload_queue_pauses`, schema v3): it
//! survives restarts, and on a shared store it is cluster-wide because the claim statement
//! itself skips paused pools and job names. A paused queue keeps its jobs and still accepts
//! submits; running jobs finish. At most [`MAX_PAUSED_QUEUES`] queues are paused at once and a
//! name is at most [`MAX_QUEUE_NAME`] bytes.

use serde::{Deserialize, Serialize};

use crate::limits::LimitError;
use crate::Millis;

/// The most queues paused at once (pools and job names together).
pub const MAX_PAUSED_QUEUES: usize = 1_000;
/// The longest queue name, in bytes (a job name's limit on the wire).
pub const MAX_QUEUE_NAME: usize = 1_024;

/// What a pause applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    /// Every job of a pool.
    Pool,
    /// Every job of one name, whatever its pool.
    Job,
}

impl QueueKind {
    /// Its stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pool => "pool",
            Self::Job => "job",
        }
    }

    /// From its stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pool" => Some(Self::Pool),
            "job" => Some(Self::Job),
            _ => None,
        }
    }
}

/// A queue: a pool or a job name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Queue {
    /// Pool or job name.
    pub kind: QueueKind,
    /// The pool's or the job's name.
    pub name: String,
}

impl Queue {
    /// The queue of pool `name`.
    pub fn pool(name: impl Into<String>) -> Self {
        Self {
            kind: QueueKind::Pool,
            name: name.into(),
        }
    }

    /// The queue of the jobs named `name`.
    pub fn job(name: impl Into<String>) -> Self {
        Self {
            kind: QueueKind::Job,
            name: name.into(),
        }
    }

    /// Checks the name's length (1..=[`MAX_QUEUE_NAME`] bytes).
    ///
    /// # Errors
    ///
    /// [`LimitError`] naming `name`.
    pub fn check(&self) -> Result<(), LimitError> {
        let n = self.name.len();
        if n == 0 || n > MAX_QUEUE_NAME {
            return Err(LimitError::new(
                "name",
                format!("of {n} bytes"),
                format!("1..={MAX_QUEUE_NAME} bytes"),
            ));
        }
        Ok(())
    }
}

/// A paused queue, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PausedQueue {
    /// The queue.
    pub queue: Queue,
    /// When it was paused.
    pub paused_at: Millis,
}

/// The refusal of one more pause when [`MAX_PAUSED_QUEUES`] are paused.
pub fn too_many_paused() -> LimitError {
    LimitError::new(
        "paused queues",
        MAX_PAUSED_QUEUES + 1,
        format!("at most {MAX_PAUSED_QUEUES} at once: resume one first"),
    )
}

/// A paused queue from a row with columns `kind`, `name`, `paused_at`.
///
/// # Errors
///
/// An engine error for a missing column or an unknown kind.
pub fn paused_queue(r: &impl crate::rules::rows::Row) -> Result<PausedQueue, crate::StoreError> {
    let kind = r.text("kind")?;
    let kind = QueueKind::parse(&kind)
        .ok_or_else(|| crate::StoreError::Engine(format!("unknown queue kind {kind:?}")))?;
    Ok(PausedQueue {
        queue: Queue {
            kind,
            name: r.text("name")?,
        },
        paused_at: r.int("paused_at")?,
    })
}
