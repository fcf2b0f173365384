//! Descriptors passed with a run (`docs/protocol.md` §9), the actor's side: a queue of runs
//! that carry descriptors, sent one descriptor at a time (`NODE_HANDLE`, the descriptor
//! attached), each acknowledged before the next (Node's rule: one handle in flight per
//! channel), then the `run` itself with `fds: n`.
//!
//! Every failure is typed ([`FdError`]) and ends the run with an error answer (not retried:
//! the descriptors cannot be passed twice) and a `cancel` to the worker, which closes what it
//! already received for that run. The supervisor's copies are closed once sent, or dropped
//! with the queue whatever happens (the process ends, the channel breaks, the run fails).

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use offload_protocol::{
    encode_handle, Cancel, ErrorInfo, FdKind, FdNotice, HandleReply, Run, ToWorker,
};
use thiserror::Error;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::actor::Actor;
use crate::timer;

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

/// A run waiting for its descriptors to be passed.
pub(super) struct FdRun {
    pub(super) run: Run,
    /// The descriptors not sent yet, with their kinds, in order.
    pub(super) fds: VecDeque<(OwnedFd, FdKind)>,
    pub(super) total: u32,
    pub(super) sent: u32,
    pub(super) cancelled: bool,
    /// Offered, not required: a worker that does not take them gets the run without them.
    pub(super) optional: bool,
    pub(super) reply: Option<oneshot::Sender<Result<(), FdError>>>,
}

/// The actor's descriptor state.
pub(super) struct Passing {
    pub(super) queue: VecDeque<FdRun>,
    /// A descriptor is out and its acknowledgement is awaited until then.
    pub(super) ack_at: Option<Instant>,
    pub(super) ack_timeout: Duration,
    /// The worker once missed an acknowledgement: no more descriptors to it.
    pub(super) unresponsive: bool,
}

impl Passing {
    pub(super) fn new(ack_timeout: Duration) -> Self {
        Self {
            queue: VecDeque::new(),
            ack_at: None,
            ack_timeout,
            unresponsive: false,
        }
    }
}

impl Actor {
    /// A run with descriptors joins the queue (behind any other such run).
    pub(super) fn queue_fd_run(&mut self, run: FdRun) {
        self.passing.queue.push_back(run);
        self.pump_fds();
    }

    /// Sends what can go now: the front run's next descriptor, or its `run` frame once every
    /// descriptor was acknowledged. Waits for the handshake (the capabilities) first.
    pub(super) fn pump_fds(&mut self) {
        while self.passing.ack_at.is_none() {
            let Some(front) = self.passing.queue.front_mut() else {
                return;
            };
            if front.cancelled {
                self.fail_front(FdError::Cancelled);
                continue;
            }
            if self.passing.unresponsive {
                let index = front.sent as usize;
                let timeout = self.passing.ack_timeout;
                self.fail_front(FdError::AckTimeout { index, timeout });
                continue;
            }
            let Some(ready) = self.ready_tx.borrow().clone() else {
                return; // the handshake has not come yet
            };
            let Some(front) = self.passing.queue.front_mut() else {
                return;
            };
            if front.sent == 0 {
                let refused = front.fds.iter().enumerate().find_map(|(index, (_, kind))| {
                    if ready.minor.unwrap_or(0) < 1
                        || !(ready.has_capability(offload_protocol::CAP_FDS)
                            || ready.has_capability(offload_protocol::CAP_HANDLES))
                    {
                        Some(FdError::NotSupported)
                    } else if !ready.takes_fd(*kind) {
                        Some(FdError::WrongKind { index, kind: *kind })
                    } else {
                        None
                    }
                });
                if let Some(e) = refused {
                    if front.optional {
                        // An offer the worker cannot take: the run goes without them (they
                        // are closed here).
                        if let Some(r) = self.passing.queue.pop_front() {
                            tracing::debug!(pid = self.pid, id = %r.run.id, error = %e, "descriptors offered, not taken");
                            let id = r.run.id.clone();
                            drop(r.fds);
                            match self.send_frame(&ToWorker::Run(r.run)) {
                                Ok(()) => {
                                    if let Some(reply) = r.reply {
                                        let _ = reply.send(Ok(()));
                                    }
                                }
                                Err(_) => {
                                    self.fd_run_failed(&id, r.reply, FdError::ChannelClosed);
                                }
                            }
                        }
                    } else {
                        self.fail_front(e);
                    }
                    continue;
                }
            }
            let Some(front) = self.passing.queue.front_mut() else {
                return;
            };
            let Some((fd, kind)) = front.fds.pop_front() else {
                // Every descriptor is acknowledged: the run goes.
                let Some(done) = self.passing.queue.pop_front() else {
                    return;
                };
                let mut run = done.run;
                run.fds = Some(done.total);
                let id = run.id.clone();
                match self.send_frame(&ToWorker::Run(run)) {
                    Ok(()) => {
                        if let Some(r) = done.reply {
                            let _ = r.send(Ok(()));
                        }
                    }
                    Err(_) => self.fd_run_failed(&id, done.reply, FdError::ChannelClosed),
                }
                continue;
            };
            let notice = FdNotice::new(front.run.id.clone(), front.sent, front.total, kind);
            let queued = self
                .writer
                .as_ref()
                .ok_or(super::errors::SendError::Closed)
                .and_then(|w| {
                    w.queue_with_fd(&encode_handle(&notice), fd)?;
                    let _ = w.flush();
                    Ok(())
                });
            if queued.is_err() {
                self.fail_front(FdError::ChannelClosed);
                continue;
            }
            self.passing.ack_at = Some(timer::deadline_in(self.passing.ack_timeout));
        }
    }

    /// The worker answered the descriptor that is out.
    pub(super) fn on_handle_reply(&mut self, reply: HandleReply) {
        if self.passing.ack_at.take().is_none() {
            tracing::debug!(
                pid = self.pid,
                ?reply,
                "handle reply with no descriptor out"
            );
            return;
        }
        match reply {
            HandleReply::Ack => {
                if let Some(front) = self.passing.queue.front_mut() {
                    front.sent += 1;
                }
            }
            HandleReply::Nack => {
                let index = self.passing.queue.front().map_or(0, |f| f.sent as usize);
                self.fail_front(FdError::Refused { index });
            }
        }
        self.pump_fds();
    }

    /// No acknowledgement in time: the run fails, and this worker gets no more descriptors
    /// (a late acknowledgement could not be told from the next one's).
    pub(super) fn on_fd_ack_timeout(&mut self) {
        self.passing.ack_at = None;
        self.passing.unresponsive = true;
        let index = self.passing.queue.front().map_or(0, |f| f.sent as usize);
        tracing::warn!(
            pid = self.pid,
            index,
            "worker did not acknowledge a descriptor"
        );
        self.fail_front(FdError::AckTimeout {
            index,
            timeout: self.passing.ack_timeout,
        });
        self.pump_fds();
    }

    /// A `cancel` for a run still passing its descriptors: a queued one fails at once, the
    /// one with a descriptor out when its acknowledgement comes.
    pub(super) fn cancel_fd_run(&mut self, id: &str) {
        let Some(pos) = self.passing.queue.iter().position(|r| r.run.id == id) else {
            return;
        };
        if pos == 0 && self.passing.ack_at.is_some() {
            if let Some(front) = self.passing.queue.front_mut() {
                front.cancelled = true;
            }
            return;
        }
        if let Some(r) = self.passing.queue.remove(pos) {
            // The cancel frame itself follows (the caller sends it).
            self.answer_fd_failure(&r.run.id, r.reply, &FdError::Cancelled);
        }
    }

    fn fail_front(&mut self, e: FdError) {
        if let Some(r) = self.passing.queue.pop_front() {
            let id = r.run.id.clone();
            // The descriptors not sent are closed here.
            drop(r.fds);
            self.fd_run_failed(&id, r.reply, e);
        }
    }

    /// The run fails: the worker closes what it already got for it (a `cancel` of a run it
    /// never saw), the caller and the run's owner get the typed error.
    fn fd_run_failed(
        &mut self,
        id: &str,
        reply: Option<oneshot::Sender<Result<(), FdError>>>,
        e: FdError,
    ) {
        let _ = self.send_frame(&ToWorker::Cancel(Cancel::new(id.to_owned())));
        self.answer_fd_failure(id, reply, &e);
    }

    fn answer_fd_failure(
        &mut self,
        id: &str,
        reply: Option<oneshot::Sender<Result<(), FdError>>>,
        e: &FdError,
    ) {
        tracing::info!(pid = self.pid, id, error = %e, "descriptors not passed");
        if let Some(r) = reply {
            let _ = r.send(Err(e.clone()));
        }
        // Not from a read of the channel: the actor's loop reports it once this returns.
        self.on_answer(id.to_owned(), Err(e.to_error_info()));
    }
}
