//! The channel's writing side, shared by the actor and every handle: frames are encoded
//! straight into one buffer by whoever sends them (a pool's actor, a handle's caller), and
//! written from the sender's own task when the socket takes them at once.
//!
//! - [`Outbox::queue`] appends a frame under a short lock (no `Vec` and no queue node per
//!   frame); [`Outbox::flush`] writes what has gathered with one non-blocking `write`, from
//!   the caller's task: no hop to another task on the quiet path, and a sender that queued
//!   many frames pays one system call for all of them.
//! - Whatever the socket does not take at once (a worker that stops reading) is left to the
//!   writer task, which waits until the socket is writable: a sender never blocks and never
//!   waits, whatever the worker does. While the writer task holds bytes, senders only append
//!   (the order of frames is the order of `queue` calls).
//! - [`Outbox::queue_with_fd`] appends a frame that carries a descriptor (`docs/protocol.md`
//!   §9): the writes stop at its first byte, which goes out with the descriptor attached
//!   (`sendmsg`, `SCM_RIGHTS`); the outbox's copy is closed once it is sent, or when the
//!   channel breaks or closes first.
//! - [`Outbox::close`] (the actor, when the job is over or the process is gone): what is
//!   queued is still written, then the socket is shut down for writing (end of file for the
//!   worker) and the writing half is dropped; frames queued after it are refused.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

use offload_protocol::encode_into;
use serde::Serialize;
use tokio::sync::Notify;

use super::channel::WriteHalf;
use super::errors::SendError;

/// A writer buffer that grew past this (a large frame) is given back after its write.
const KEEP_CAPACITY: usize = 1024 * 1024;

#[derive(Debug)]
struct State {
    /// Frames queued and not yet written.
    buf: Vec<u8>,
    /// Descriptors to attach, by the offset in `buf` of their frame's first byte (ascending).
    marks: VecDeque<(usize, OwnedFd)>,
    /// The writer task holds bytes it has not written yet: senders append, never write.
    writing: bool,
    /// The writing half, `None` once closed and written out (or broken).
    half: Option<Arc<WriteHalf>>,
    /// [`Outbox::close`] was called: no new frames.
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the writer task: bytes the socket did not take, or the close.
    wake: Notify,
}

/// The shared write buffer of one channel (see the module docs). Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    shared: Arc<Shared>,
    max_frame: usize,
}

impl Outbox {
    /// Starts the writer task on `half`. It ends after [`close`](Self::close) (once what is
    /// queued is written) or when a write fails (the worker is gone).
    pub(crate) fn start(half: WriteHalf, max_frame: usize) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buf: Vec::with_capacity(16 * 1024),
                marks: VecDeque::new(),
                writing: false,
                half: Some(Arc::new(half)),
                closed: false,
            }),
            wake: Notify::new(),
        });
        tokio::spawn(write_loop(Arc::clone(&shared)));
        Self { shared, max_frame }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `msg` as one frame; nothing is written until [`flush`](Self::flush).
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] after [`close`](Self::close) or a failed write,
    /// [`SendError::Encode`] when the frame exceeds the limit (nothing is queued).
    pub(crate) fn queue<T: Serialize>(&self, msg: &T) -> Result<(), SendError> {
        let mut st = self.lock();
        if st.closed || st.half.is_none() {
            return Err(SendError::Closed);
        }
        encode_into(msg, self.max_frame, &mut st.buf)?;
        Ok(())
    }

    /// Appends `frame` (one encoded line, without its newline) with `fd` attached to its
    /// first byte; nothing is written until [`flush`](Self::flush). The outbox owns `fd` from
    /// here: it is closed once sent, or dropped with the queue if the channel breaks or closes.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] after [`close`](Self::close) or a failed write (`fd` is closed).
    pub(crate) fn queue_with_fd(&self, frame: &[u8], fd: OwnedFd) -> Result<(), SendError> {
        let mut st = self.lock();
        if st.closed || st.half.is_none() {
            return Err(SendError::Closed);
        }
        let at = st.buf.len();
        st.buf.extend_from_slice(frame);
        st.buf.push(b'\n');
        st.marks.push_back((at, fd));
        Ok(())
    }

    /// Writes what is queued: at once from this task when the socket takes it, the rest by
    /// the writer task. Never blocks.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] when the channel is broken (a write failed: the worker is gone or
    /// closed its end); what was queued is dropped.
    pub(crate) fn flush(&self) -> Result<(), SendError> {
        let mut st = self.lock();
        let State {
            buf,
            half,
            writing,
            marks,
            ..
        } = &mut *st;
        let Some(half) = half.as_ref() else {
            buf.clear();
            marks.clear();
            return Err(SendError::Closed);
        };
        if *writing || buf.is_empty() {
            return Ok(());
        }
        let mut written = 0;
        let broken = loop {
            match write_some(half, buf, written, marks) {
                Ok(0) => break true,
                Ok(n) => {
                    written += n;
                    if written == buf.len() {
                        break false;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        if broken {
            // The worker is gone: its exit decides the fate of what was queued.
            st.buf.clear();
            st.marks.clear();
            st.half = None;
            drop(st);
            self.shared.wake.notify_one();
            return Err(SendError::Closed);
        }
        for (at, _) in &mut st.marks {
            *at -= written;
        }
        if written == st.buf.len() {
            st.buf.clear();
            if st.buf.capacity() > KEEP_CAPACITY {
                st.buf = Vec::with_capacity(16 * 1024);
            }
        } else {
            // The socket is full: the writer task waits until it is writable.
            st.buf.drain(..written);
            drop(st);
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// [`queue`](Self::queue) then [`flush`](Self::flush).
    #[cfg(test)]
    pub(crate) fn send<T: Serialize>(&self, msg: &T) -> Result<(), SendError> {
        self.queue(msg)?;
        self.flush()
    }

    /// No more frames: what is queued is written, then the worker sees end of file.
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        st.closed = true;
        drop(st);
        self.shared.wake.notify_one();
    }
}

/// Closes the outbox when dropped: the actor holds one, so a panicking actor still ends the
/// channel (and its writer task).
#[derive(Debug)]
pub(crate) struct CloseOnDrop(pub(crate) Outbox);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The writer task: writes what senders left to it, waiting for the socket to be writable.
async fn write_loop(shared: Arc<Shared>) {
    let mut local: Vec<u8> = Vec::new();
    let mut local_marks: VecDeque<(usize, OwnedFd)> = VecDeque::new();
    loop {
        let half = {
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            let Some(half) = st.half.clone() else {
                st.buf = Vec::new();
                st.marks.clear();
                return;
            };
            if st.buf.is_empty() {
                if st.closed {
                    // Written out: dropping the half (its only holder: senders borrow it
                    // under the lock) shuts the socket down for writing, end of file for
                    // the worker.
                    st.half = None;
                    return;
                }
                None
            } else {
                std::mem::swap(&mut st.buf, &mut local);
                std::mem::swap(&mut st.marks, &mut local_marks);
                st.writing = true;
                Some(half)
            }
        };
        let Some(half) = half else {
            shared.wake.notified().await;
            continue;
        };
        let ok = write_all(&half, &local, &mut local_marks).await;
        local.clear();
        local_marks.clear();
        if local.capacity() > KEEP_CAPACITY {
            local = Vec::new();
        }
        let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        st.writing = false;
        if !ok {
            st.buf = Vec::new();
            st.marks.clear();
            st.half = None;
            return;
        }
        // Frames queued while this task wrote came after the ones it held: their marks are
        // already relative to `st.buf`.
    }
}

/// One write of `buf[at..]`: up to the next descriptor's frame with a plain write, or that
/// frame (up to the one after) with its descriptor attached, which is closed once sent.
fn write_some(
    half: &WriteHalf,
    buf: &[u8],
    at: usize,
    marks: &mut VecDeque<(usize, OwnedFd)>,
) -> std::io::Result<usize> {
    match marks.front() {
        Some((m, fd)) if *m == at => {
            let end = marks.get(1).map_or(buf.len(), |(next, _)| *next);
            let n = crate::fdpass::send_with_fd(half.as_fd(), &buf[at..end], fd.as_fd())?;
            if n > 0 {
                // Sent: the kernel holds its own reference, ours is closed.
                marks.pop_front();
            }
            Ok(n)
        }
        Some((m, _)) => half.try_write(&buf[at..*m]),
        None => half.try_write(&buf[at..]),
    }
}

async fn write_all(half: &WriteHalf, bytes: &[u8], marks: &mut VecDeque<(usize, OwnedFd)>) -> bool {
    let mut at = 0;
    // Registered for writability only while the socket is full (see `channel.rs`).
    let mut waiter = None;
    while at < bytes.len() {
        match write_some(half, bytes, at, marks) {
            Ok(0) => return false,
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let fd = match &mut waiter {
                    Some(fd) => fd,
                    none => match half.waiter() {
                        Ok(fd) => none.insert(fd),
                        Err(_) => return false,
                    },
                };
                match fd.writable().await {
                    // Full again after this wake-up: the next write clears it or goes on.
                    Ok(mut guard) => guard.clear_ready(),
                    Err(_) => return false,
                }
            }
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use offload_protocol::FrameReader;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn frames_arrive_whole_and_in_order_when_the_reader_comes_late_then_end_of_file() {
        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        let (_rd, wr) = super::super::channel::split(ours).unwrap();
        let outbox = Outbox::start(wr, 1 << 20);
        // Far more than the socket buffer: the first frames go out from this task, the rest
        // wait for the writer task; nothing blocks while nobody reads.
        let pad = "p".repeat(4096);
        for i in 0..2000 {
            outbox.queue(&json!({"n": i, "pad": pad})).unwrap();
            if i % 7 == 0 {
                outbox.flush().unwrap();
            }
        }
        outbox.flush().unwrap();
        outbox.close();
        assert!(matches!(outbox.queue(&json!(1)), Err(SendError::Closed)));
        let mut reader = FrameReader::new(theirs, 1 << 20);
        for i in 0..2000 {
            let frame = reader.next_frame().await.unwrap().unwrap();
            let v: serde_json::Value = serde_json::from_slice(&frame).unwrap();
            assert_eq!(v["n"], i);
        }
        // Closed and written out: the reader sees the end of the channel.
        assert!(reader.next_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_frame_over_the_limit_is_refused_and_nothing_of_it_is_queued() {
        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        let (_rd, wr) = super::super::channel::split(ours).unwrap();
        let outbox = Outbox::start(wr, 64);
        assert!(matches!(
            outbox.send(&json!({"pad": "x".repeat(100)})),
            Err(SendError::Encode(_))
        ));
        outbox.send(&json!({"ok": 1})).unwrap();
        outbox.close();
        let mut reader = FrameReader::new(theirs, 1024);
        assert_eq!(reader.next_frame().await.unwrap().unwrap(), br#"{"ok":1}"#);
        assert!(reader.next_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_peer_that_is_gone_breaks_the_outbox_without_blocking() {
        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        let (_rd, wr) = super::super::channel::split(ours).unwrap();
        let outbox = Outbox::start(wr, 1 << 20);
        drop(theirs);
        let pad = "p".repeat(4096);
        for _ in 0..100 {
            // The first write fails (the peer is gone); later frames are refused.
            let _ = outbox.send(&json!({"pad": pad}));
        }
        assert!(matches!(outbox.queue(&json!(1)), Err(SendError::Closed)));
    }
}
