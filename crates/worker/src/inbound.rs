//! The channel's reading side: a dedicated OS thread.
//!
//! The worker's runtime is single-threaded (one thread per round trip instead of a pool's
//! cross-thread wake-ups), so a handler that blocks its thread would stall a reader task. This
//! thread keeps reading whatever the handlers do: it decodes frames, fires a `cancel`'s token at
//! once (a handler polling [`Context::is_cancelled`](crate::Context::is_cancelled) sees it
//! while it blocks), and on end of file cancels every job and, under [`Worker::run`], ends the
//! process itself. Everything is also forwarded, in order, to the dispatcher on the runtime.
//!
//! [`Worker::run`]: crate::Worker::run
#![allow(unsafe_code)]

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use offload_protocol::{
    decode_handle, decode_to_worker, Decoded, FdNotice, HandleFrame, LineFramer, ToWorker,
};
use tokio::sync::mpsc::UnboundedSender;

use crate::context::StopReason;
use crate::shared::Shared;

/// What the reading thread hands to the dispatcher.
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

/// What the thread does at the end of the channel.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnEnd {
    /// Tell the dispatcher (the caller of `serve` decides).
    Forward,
    /// End the process (`Worker::run`): status 0 at end of file, 2 after a protocol error,
    /// even while a handler blocks the runtime's thread.
    Exit,
}

/// Starts the reading thread on `stream` (a clone of the channel, which is non-blocking: the
/// writer shares it).
pub(crate) fn start(
    stream: UnixStream,
    max_frame: usize,
    shared: Arc<Shared>,
    tx: UnboundedSender<Inbound>,
    on_end: OnEnd,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("offload-reader".into())
        .spawn(move || {
            let end = read_loop(stream, max_frame, &shared, &tx);
            for (ctx, _) in shared.jobs().values() {
                ctx.stop(StopReason::Cancelled);
            }
            if shared.finished.load(Ordering::SeqCst) {
                return;
            }
            if on_end == OnEnd::Exit {
                match &end {
                    Inbound::Protocol(e) => {
                        eprintln!("offload worker: protocol error: {e}");
                        std::process::exit(2)
                    }
                    _ => std::process::exit(0),
                }
            }
            let _ = tx.send(end);
        })?;
    Ok(())
}

fn read_loop(
    stream: UnixStream,
    max_frame: usize,
    shared: &Shared,
    tx: &UnboundedSender<Inbound>,
) -> Inbound {
    let mut framer = LineFramer::new(max_frame);
    let mut chunk = vec![0u8; 64 * 1024];
    // Descriptors received and not yet matched with their `NODE_HANDLE` frame (the kernel
    // hands one over with the read that has its frame's first byte).
    let mut fds: VecDeque<OwnedFd> = VecDeque::new();
    // After a short read the channel is most likely drained: wait first instead of paying a
    // `read` that returns `WouldBlock` (one system call less per round trip).
    let mut maybe_more = true;
    loop {
        if !maybe_more && wait_readable(&stream).is_err() {
            return Inbound::Closed;
        }
        let n = match crate::fd::recv_with_fds(&stream, &mut chunk, &mut fds) {
            Ok(0) => {
                return if framer.pending() == 0 {
                    Inbound::Closed
                } else {
                    Inbound::Protocol(format!(
                        "channel closed in the middle of a frame ({} bytes without a newline)",
                        framer.pending()
                    ))
                };
            }
            Ok(n) => {
                maybe_more = n == chunk.len();
                // A supervisor sends one descriptor per frame, each acknowledged before the
                // next: more unmatched ones than this are not ours to keep.
                while fds.len() > crate::fds::MAX_PENDING_FDS {
                    fds.pop_front();
                }
                n
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                maybe_more = false;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                maybe_more = true;
                continue;
            }
            Err(_) => return Inbound::Closed,
        };
        let mut failed = None;
        framer.push(&chunk[..n], |frame| {
            if failed.is_some() {
                return;
            }
            if let Ok(line) = &frame {
                if let Some(handle) = decode_handle(line) {
                    match handle {
                        Ok(HandleFrame::Handle(notice)) => {
                            let _ = tx.send(Inbound::Fd(notice, fds.pop_front()));
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
                    // Forwarded too: a `run` read just before is registered only when the
                    // dispatcher takes it, and the dispatcher handles the cancel after it.
                    let _ = tx.send(Inbound::Message(msg));
                }
                Ok(Decoded::Ignored { .. }) => {}
                Err(e) => failed = Some(e),
            }
        });
        if let Some(e) = failed {
            return Inbound::Protocol(e);
        }
    }
}

/// Blocks until the channel is readable (or closed).
fn wait_readable(stream: &UnixStream) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: `pfd` is a valid pollfd for the duration of the call; nfds is 1.
        let r = unsafe { libc::poll(&mut pfd, 1, -1) };
        if r >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
