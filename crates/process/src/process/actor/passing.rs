//! The actor's side of descriptors passed with a run (`docs/protocol.md` §9; the errors and
//! limits are `process/fds.rs`): a queue of runs that carry descriptors, sent one descriptor at
//! a time (`NODE_HANDLE`, the descriptor attached), each acknowledged before the next (Node's
//! rule: one handle in flight per channel), then the `run` itself with `fds: n`. A failure ends
//! the run with an error answer and a `cancel` to the worker; the supervisor's copies are
//! closed once sent, or dropped with the queue whatever happens.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::time::Duration;

use offload_protocol::{encode_handle, Cancel, FdKind, FdNotice, HandleReply, Run, ToWorker};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Actor;
use crate::process::fds::FdError;
use crate::timer;

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
pub(in crate::process) struct Passing {
    pub(super) queue: VecDeque<FdRun>,
    /// A descriptor is out and its acknowledgement is awaited until then.
    pub(super) ack_at: Option<Instant>,
    pub(super) ack_timeout: Duration,
    /// The worker once missed an acknowledgement: no more descriptors to it.
    pub(super) unresponsive: bool,
}

impl Passing {
    pub(in crate::process) fn new(ack_timeout: Duration) -> Self {
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
                .ok_or(crate::process::errors::SendError::Closed)
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
