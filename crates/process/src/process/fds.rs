//! Descriptors passed with a run (`docs/protocol.md` §9): the limits, the typed failures and
//! the check of what a caller hands over. The actor's side (a queue of runs that carry
//! descriptors, sent one descriptor at a time — `NODE_HANDLE`, the descriptor attached — each
//! acknowledged before the next, Node's rule: one handle in flight per channel, then the `run`
//! itself with `fds: n`) is `actor/passing.rs`.
//!
//! Every failure is typed ([`FdError`]) and ends the run with an error answer (not retried:
//! the descriptors cannot be passed twice) and a `cancel` to the worker, which closes what it
//! already received for that run. The supervisor's copies are closed once sent, or dropped
//! with the queue whatever happens (the process ends, the channel breaks, the run fails).

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use offload_protocol::{ErrorInfo, FdKind};
use thiserror::Error;

/// The default largest number of descriptors one run may carry.
pub const DEFAULT_MAX_FDS_PER_RUN: usize = 16;
/// The default time a worker has to acknowledge one descriptor.
pub const DEFAULT_FD_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Why descriptors could not be passed with a run. The run then fails with an error whose
/// `name` is [`FdError::name`].
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FdError {
    /// More descriptors than the configured maximum per run (`max_fds_per_run`).
    #[error("{count} descriptors for one run; the limit (max_fds_per_run) is {max}")]
    TooMany {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A descriptor is not open.
    #[error("descriptor {index} of the run is not open")]
    Closed {
        /// Its position among the run's descriptors.
        index: usize,
    },
    /// The worker did not announce protocol 1.1 with the `fds` or `handles` capability.
    #[error("the worker does not take descriptors (it announced neither minor 1 with \"fds\" nor \"handles\"); update its SDK")]
    NotSupported,
    /// The worker takes only sockets Node can wrap (`handles`) and this one is not one.
    #[error("descriptor {index} is a {kind}: this worker takes only sockets (tcp, unix, udp, listeners)")]
    WrongKind {
        /// Its position.
        index: usize,
        /// What it is.
        kind: FdKind,
    },
    /// The worker answered `NODE_HANDLE_NACK` (no descriptor arrived, or it holds too many).
    #[error("the worker refused descriptor {index}")]
    Refused {
        /// Its position.
        index: usize,
    },
    /// The worker did not acknowledge a descriptor in time (`fd_ack_timeout`); it takes no
    /// more descriptors.
    #[error(
        "the worker did not acknowledge descriptor {index} within {timeout:?} (fd_ack_timeout)"
    )]
    AckTimeout {
        /// Its position.
        index: usize,
        /// The limit.
        timeout: Duration,
    },
    /// The run was cancelled before its descriptors were all passed.
    #[error("the run was cancelled while its descriptors were being passed")]
    Cancelled,
    /// The worker's channel is closed or its process is gone.
    #[error("the worker's channel is closed")]
    ChannelClosed,
}

impl FdError {
    /// The `name` of the run's error answer (`FdTooMany`, `FdClosed`, `FdsNotSupported`,
    /// `FdWrongKind`, `FdRefused`, `FdAckTimeout`, `Cancelled`, `FdChannelClosed`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::TooMany { .. } => "FdTooMany",
            Self::Closed { .. } => "FdClosed",
            Self::NotSupported => "FdsNotSupported",
            Self::WrongKind { .. } => "FdWrongKind",
            Self::Refused { .. } => "FdRefused",
            Self::AckTimeout { .. } => "FdAckTimeout",
            Self::Cancelled => "Cancelled",
            Self::ChannelClosed => "FdChannelClosed",
        }
    }

    /// Checks descriptors before they are handed over: at most `max`, each open.
    ///
    /// # Errors
    ///
    /// [`FdError::TooMany`], [`FdError::Closed`].
    pub fn check(fds: &[OwnedFd], max: usize) -> Result<(), FdError> {
        classify_all(fds, max).map(drop)
    }

    /// The error answer of a run that failed this way (never retried).
    pub fn to_error_info(&self) -> ErrorInfo {
        let mut e = ErrorInfo::new(self.name(), self.to_string());
        e.retry = Some(false);
        e
    }
}

/// Checks `fds` before they go to an actor: at most `max`, each open; returns their kinds.
///
/// # Errors
///
/// [`FdError::TooMany`], [`FdError::Closed`].
pub(crate) fn classify_all(fds: &[OwnedFd], max: usize) -> Result<Vec<FdKind>, FdError> {
    if fds.len() > max {
        return Err(FdError::TooMany {
            count: fds.len(),
            max,
        });
    }
    fds.iter()
        .enumerate()
        .map(|(index, fd)| {
            crate::fdpass::classify(fd.as_fd()).map_err(|_| FdError::Closed { index })
        })
        .collect()
}
