//! Why a message to a worker process, or a call of one of its functions, failed: errors of
//! the handle that the channel's writer (`outbox.rs`) and the actor return too (a leaf).

use offload_protocol::ErrorInfo;
use thiserror::Error;

use crate::outcome::Outcome;

/// Why a message could not be sent to a process.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SendError {
    /// The process has exited, or its channel was closed after its job ended.
    #[error("the worker process is gone or its channel is closed")]
    Closed,
    /// The process was started in command mode and has no channel.
    #[error("the process runs in command mode: it has no channel")]
    NoChannel,
    /// The message exceeds the frame limit.
    #[error(transparent)]
    Encode(#[from] offload_protocol::EncodeError),
}

/// Why a [`JobProcess::call`](crate::JobProcess::call) failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CallError {
    /// The message could not be sent.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The function threw.
    #[error("the call failed: {0}")]
    Failed(ErrorInfo),
    /// The process ended before answering.
    #[error("the process ended before answering: {0}")]
    Ended(Outcome),
}
