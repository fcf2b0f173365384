//! The daemon's event stream (`GET /v1/events`).

use offload_store::{JobId, JobState};
use serde::Serialize;
use serde_json::Value;

/// Something clients may watch.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ServerEvent {
    /// A job changed state.
    Job(JobChange),
    /// A running job reported progress.
    Progress(JobProgress),
    /// A running job emitted an event.
    JobEvent(JobEmitted),
    /// A worker changed.
    Worker(WorkerChange),
}

impl ServerEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Job(_) => "job",
            Self::Progress(_) => "progress",
            Self::JobEvent(_) => "job_event",
            Self::Worker(_) => "worker",
        }
    }

    /// The job it concerns, if any.
    pub fn job_id(&self) -> Option<JobId> {
        match self {
            Self::Job(j) => Some(j.id),
            Self::Progress(p) => Some(p.id),
            Self::JobEvent(e) => Some(e.id),
            Self::Worker(_) => None,
        }
    }
}

/// `job`: a state change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobChange {
    /// The job.
    pub id: JobId,
    /// Its name.
    pub job: String,
    /// Its pool.
    pub pool: String,
    /// The new state.
    pub state: JobState,
    /// The attempt.
    pub attempt: u32,
}

/// `progress`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobProgress {
    /// The job.
    pub id: JobId,
    /// The value.
    pub data: Value,
}

/// `job_event`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobEmitted {
    /// The job.
    pub id: JobId,
    /// The event's name.
    pub name: String,
    /// Its data.
    pub data: Value,
}

/// `worker`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerChange {
    /// The pool.
    pub pool: String,
    /// The worker.
    pub pid: u32,
    /// `spawned`, `ready`, `exited`, `recycled`.
    pub event: &'static str,
    /// Why (exit outcome, recycle reason).
    pub reason: Option<String>,
}
