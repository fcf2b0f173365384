//! The daemon's event stream (`GET /v1/events`).

use offload_store::{JobId, JobState};
use serde::Serialize;
use serde_json::{json, Value};

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
    /// A cron schedule was paused or resumed.
    Schedule(ScheduleChange),
    /// A queue (a pool or a job name) was paused or resumed.
    Queue(QueueChange),
}

impl ServerEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Job(_) => "job",
            Self::Progress(_) => "progress",
            Self::JobEvent(_) => "job_event",
            Self::Worker(_) => "worker",
            Self::Schedule(_) => "schedule",
            Self::Queue(_) => "queue",
        }
    }

    /// The job it concerns, if any.
    pub fn job_id(&self) -> Option<JobId> {
        match self {
            Self::Job(j) => Some(j.id),
            Self::Progress(p) => Some(p.id),
            Self::JobEvent(e) => Some(e.id),
            Self::Worker(_) | Self::Schedule(_) | Self::Queue(_) => None,
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

/// `schedule`: a cron schedule paused (by itself after failures, or by a user) or resumed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleChange {
    /// The schedule.
    pub schedule: String,
    /// `paused` or `resumed`.
    pub change: &'static str,
    /// Why it paused (`manual`, or the consecutive failures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The error of its last failed run, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<Value>,
}

/// `queue`: a pool or a job name paused or resumed (by a request to this node).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueChange {
    /// `pool` or `job`.
    pub kind: &'static str,
    /// The pool's or the job's name.
    pub name: String,
    /// `paused` or `resumed`.
    pub change: &'static str,
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

/// A progress value or job event over `limit` bytes of JSON becomes this marker (in SSE and in
/// the stored progress): `{"offload_dropped": {"reason": …, "limit_bytes": limit}}`.
/// The second value says whether it was replaced.
pub(crate) fn capped(data: Value, limit: usize) -> (Value, bool) {
    if json_size_over(&data, limit) {
        let marker = json!({"offload_dropped": {
            "reason": "the value is larger than http.max_event_bytes",
            "limit_bytes": limit,
        }});
        (marker, true)
    } else {
        (data, false)
    }
}

/// Whether `value` serializes to more than `limit` bytes; counting stops at the limit.
pub(crate) fn json_size_over(value: &Value, limit: usize) -> bool {
    struct Count {
        n: usize,
        limit: usize,
    }
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.n += buf.len();
            if self.n > self.limit {
                Err(std::io::Error::other("over the limit"))
            } else {
                Ok(buf.len())
            }
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(&mut Count { n: 0, limit }, value).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_over_the_limit_become_a_marker() {
        assert!(!json_size_over(&json!("abc"), 5));
        assert!(json_size_over(&json!("abcd"), 5));
        assert_eq!(capped(json!({"a": 1}), 64), (json!({"a": 1}), false));
        let (big, replaced) = capped(json!("x".repeat(100)), 64);
        assert!(replaced);
        assert_eq!(big["offload_dropped"]["limit_bytes"], 64);
    }
}
