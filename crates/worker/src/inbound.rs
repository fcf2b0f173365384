//! The channel's reading side, shared by the runtime's thread and the watchdog thread.
//!
//! The runtime's thread reads the channel itself (one wake-up per round trip: the one that
//! runs the handler), and the watchdog ([`crate::watchdog`]) reads it only while the runtime's
//! thread is held (a handler that blocks it): whoever reads holds [`Channel`]'s lock, and the
//! watchdog hands what it read to the runtime through a queue under that same lock, which the
//! runtime empties before it reads again, so frames keep their order. Both fire a `cancel`'s
//! token as soon as they decode it.

use std::collections::VecDeque;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Mutex, MutexGuard};

use offload_protocol::{
    decode_handle, decode_to_worker, Decoded, FdNotice, HandleFrame, LineFramer, ToWorker,
};

use crate::context::StopReason;
use crate::shared::Shared;

/// What a read hands to the dispatcher.
pub(crate) enum Inbound {
    /// A decoded message, in channel order.
    Message(ToWorker),
    /// A descriptor passed for a run (`NODE_HANDLE`), `None` if none came with the frame.
    Fd(FdNotice, Option<OwnedFd>),
    /// End of file, or the channel failed: the supervisor is gone.
    Closed,
    /// A frame broke the protocol.
    Protocol(String),
}

/// What the watchdog does at the end of the channel when it reads it (the runtime's thread
/// being held).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnEnd {
    /// Tell the dispatcher (the caller of `serve` decides).
    Forward,
    /// End the process (`Worker::run`): status 0 at end of file, 2 after a protocol error,
    /// even while a handler blocks the runtime's thread.
    Exit,
}

/// What one `recvmsg` found.
pub(crate) enum Read {
    /// A short read: the channel is most likely drained (wait before reading again).
    Drained,
    /// The read filled the buffer: there may be more.
    More,
    /// The end of the channel (or a protocol error): nothing more will be read.
    End(Inbound),
}

/// The reader's buffers, owned by whoever holds the lock.
pub(crate) struct State {
    framer: LineFramer,
    chunk: Box<[u8]>,
    /// Descriptors received and not yet matched with their `NODE_HANDLE` frame (the kernel
    /// hands one over with the read that has its frame's first byte).
    fds: VecDeque<OwnedFd>,
}

/// The channel's reading end and the state both readers share.
pub(crate) struct Channel {
    /// A clone of the channel (non-blocking: the writer shares it).
    pub(crate) stream: UnixStream,
    state: Mutex<State>,
    /// Bumped each time the runtime's thread takes the lock to read: the watchdog's sign that
    /// the runtime's thread is not held.
    pub(crate) progress: AtomicU64,
    /// The end of the channel was read (by either reader): the watchdog ends.
    pub(crate) ended: AtomicBool,
}

impl Channel {
    pub(crate) fn new(stream: UnixStream, max_frame: usize) -> Self {
        Self {
            stream,
            state: Mutex::new(State {
                framer: LineFramer::new(max_frame),
                chunk: vec![0u8; 64 * 1024].into_boxed_slice(),
                fds: VecDeque::new(),
            }),
            progress: AtomicU64::new(0),
            ended: AtomicBool::new(false),
        }
    }

    /// The right to read.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One `recvmsg`: every complete frame goes to `out` (a `cancel`'s token fires at once).
    pub(crate) fn read_once(
        &self,
        st: &mut State,
        shared: &Shared,
        out: &mut Vec<Inbound>,
    ) -> Read {
        let State { framer, chunk, fds } = st;
        let n = match crate::fd::recv_with_fds(&self.stream, chunk, fds) {
            Ok(0) => {
                return Read::End(if framer.pending() == 0 {
                    Inbound::Closed
                } else {
                    Inbound::Protocol(format!(
                        "channel closed in the middle of a frame ({} bytes without a newline)",
                        framer.pending()
                    ))
                });
            }
            Ok(n) => {
                // A supervisor sends one descriptor per frame, each acknowledged before the
                // next: more unmatched ones than this are not ours to keep.
                while fds.len() > crate::fds::MAX_PENDING_FDS {
                    fds.pop_front();
                }
                n
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Read::Drained,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Read::More,
            Err(_) => return Read::End(Inbound::Closed),
        };
        let more = n == chunk.len();
        let mut failed = None;
        framer.push(&chunk[..n], |frame| {
            if failed.is_some() {
                return;
            }
            if let Ok(line) = &frame {
                if let Some(handle) = decode_handle(line) {
                    match handle {
                        Ok(HandleFrame::Handle(notice)) => {
                            out.push(Inbound::Fd(notice, fds.pop_front()));
                        }
                        Ok(_) => {}
                        Err(e) => failed = Some(e.to_string()),
                    }
                    return;
                }
            }
            let msg = frame
                .map_err(|e| e.to_string())
                .and_then(|line| decode_to_worker(line).map_err(|e| e.to_string()));
            match msg {
                Ok(Decoded::Message(msg)) => {
                    if let ToWorker::Cancel(c) = &msg {
                        if let Some((ctx, _)) = shared.jobs().get(&c.id) {
                            ctx.stop(StopReason::Cancelled);
                        }
                    }
                    // Dispatched too: a `run` read just before is registered only when the
                    // dispatcher takes it, and the dispatcher handles the cancel after it.
                    out.push(Inbound::Message(msg));
                }
                Ok(Decoded::Ignored { .. }) => {}
                Err(e) => failed = Some(e),
            }
        });
        match failed {
            Some(e) => Read::End(Inbound::Protocol(e)),
            None if more => Read::More,
            None => Read::Drained,
        }
    }
}
