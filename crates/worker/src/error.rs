//! Why a worker could not run or had to stop.

use offload_protocol::PROTOCOL_VERSION;
use thiserror::Error;

/// Why the worker could not run or had to stop.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// Not started by an offload supervisor, or started with a bad environment.
    #[error("{0}")]
    Environment(String),
    /// The supervisor speaks only protocol versions this SDK does not.
    #[error("supervisor speaks protocol {supervisor}, this worker needs {PROTOCOL_VERSION}")]
    UnsupportedVersion {
        /// `OFFLOAD_PROTOCOL`.
        supervisor: u32,
    },
    /// A frame from the supervisor broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The channel failed.
    #[error("channel error: {0}")]
    Io(#[from] std::io::Error),
}
