//! The worker's settings, read from the environment its supervisor sets (`docs/protocol.md`):
//! the channel's fd, the frame limit, the concurrency, the protocol version.

use offload_protocol::{env, CHANNEL_FD, DEFAULT_MAX_FRAME, PROTOCOL_VERSION};

use crate::error::WorkerError;

/// The worker's settings, read from the environment the supervisor sets.
pub(crate) struct Config {
    pub(crate) fd: i32,
    pub(crate) max_frame: usize,
    pub(crate) concurrency: u32,
}

impl Config {
    /// Reads them; a missing channel or a protocol older than ours is refused.
    pub(crate) fn from_env(default_concurrency: Option<u32>) -> Result<Self, WorkerError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let fd = var(env::CHANNEL_FD).ok_or_else(|| {
            WorkerError::Environment(format!(
                "{} is not set: this program is an offload worker; start it with offload \
                 (offload run, ChildJob or ChildPool)",
                env::CHANNEL_FD
            ))
        })?;
        let fd = fd.parse::<i32>().map_err(|_| {
            WorkerError::Environment(format!("{}={fd:?} is not an fd number", env::CHANNEL_FD))
        })?;
        let supervisor = var(env::PROTOCOL)
            .map(|v| v.parse::<u32>().unwrap_or(0))
            .unwrap_or(PROTOCOL_VERSION);
        if supervisor < PROTOCOL_VERSION {
            return Err(WorkerError::UnsupportedVersion { supervisor });
        }
        let max_frame = var(env::MAX_FRAME)
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_FRAME);
        let concurrency = var(env::CONCURRENCY)
            .and_then(|v| v.parse::<u32>().ok())
            .or(default_concurrency)
            .unwrap_or(1)
            .max(1);
        debug_assert_eq!(CHANNEL_FD, 3);
        Ok(Self {
            fd,
            max_frame,
            concurrency,
        })
    }
}
