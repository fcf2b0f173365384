//! How a job process ended.

use offload_protocol::ErrorInfo;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which resource limit a job hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Limit {
    /// The address-space limit (memory).
    Memory,
    /// The CPU-seconds limit.
    Cpu,
    /// The open-files limit.
    OpenFiles,
}

/// The typed end of a job.
///
/// Decided from what actually happened (an answer on the channel, the exit status), never from
/// "a signal was sent". In order of precedence: an answer to the job (`Succeeded`/`Failed`),
/// a protocol violation, the timeout, an explicit kill, a resource limit, then the exit status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The job returned a value.
    Succeeded {
        /// Its result.
        value: Value,
    },
    /// The job threw or rejected.
    Failed {
        /// The error's class.
        name: String,
        /// What happened.
        message: String,
        /// Where.
        stack: Option<String>,
    },
    /// The job threw or rejected with an error it marked not retryable (`retry: false` on the
    /// protocol's error): whoever retries failures goes straight to the end instead. Its
    /// [`kind`](Outcome::kind) is `failed`, as for [`Failed`](Outcome::Failed).
    FailedNoRetry {
        /// The error's class.
        name: String,
        /// What happened.
        message: String,
        /// Where.
        stack: Option<String>,
    },
    /// The job ran past its timeout and was stopped (cancel, grace, then the group killed).
    TimedOut,
    /// The job was cancelled on request before it finished.
    Cancelled,
    /// The job was killed on request; `signal` is the one that ended it.
    Killed {
        /// The terminating signal (or the one sent, if it exited by itself after it).
        signal: i32,
    },
    /// The process exited without answering.
    Exited {
        /// Its exit status.
        code: i32,
    },
    /// The process died from a signal nobody sent it (segfault, abort, OOM killer).
    Crashed {
        /// The signal.
        signal: i32,
    },
    /// The worker broke the protocol and was killed.
    ProtocolError {
        /// What it did.
        message: String,
    },
    /// The job ran into one of its resource limits.
    ResourceLimit {
        /// Which.
        which: Limit,
    },
}

impl Outcome {
    /// Whether the job succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Succeeded { .. })
    }

    /// A short name of the variant (`succeeded`, `timed_out`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Succeeded { .. } => "succeeded",
            Self::Failed { .. } | Self::FailedNoRetry { .. } => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Killed { .. } => "killed",
            Self::Exited { .. } => "exited",
            Self::Crashed { .. } => "crashed",
            Self::ProtocolError { .. } => "protocol_error",
            Self::ResourceLimit { .. } => "resource_limit",
        }
    }

    /// `Failed` from a worker's error (`FailedNoRetry` when it says `retry: false`).
    pub fn failed(e: ErrorInfo) -> Self {
        if e.retryable() {
            Self::Failed {
                name: e.name,
                message: e.message,
                stack: e.stack,
            }
        } else {
            Self::FailedNoRetry {
                name: e.name,
                message: e.message,
                stack: e.stack,
            }
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Succeeded { .. } => write!(f, "succeeded"),
            Self::Failed { name, message, .. } => write!(f, "failed: {name}: {message}"),
            Self::FailedNoRetry { name, message, .. } => {
                write!(f, "failed (not retryable): {name}: {message}")
            }
            Self::TimedOut => write!(f, "timed out"),
            Self::Cancelled => write!(f, "cancelled"),
            Self::Killed { signal } => write!(f, "killed by signal {signal}"),
            Self::Exited { code } => write!(f, "exited with status {code} without an answer"),
            Self::Crashed { signal } => write!(f, "crashed with signal {signal}"),
            Self::ProtocolError { message } => write!(f, "protocol error: {message}"),
            Self::ResourceLimit { which } => write!(f, "hit its {which:?} limit"),
        }
    }
}
