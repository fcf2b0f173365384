//! The channel's writing side: frames are encoded straight into one shared buffer and one task
//! writes whatever has gathered in one `write`.
//!
//! No buffer or queue node per frame: a sender appends to the buffer under a short lock, the
//! writer swaps it with its own (emptied, reused) buffer. A busy worker thus writes many
//! answers per system call, and a quiet one writes each answer as soon as it is queued.
//!
//! The writer writes to the non-blocking socket directly and asks the runtime to wait for it
//! to be writable only when it is full: a socket registered for writability all the time
//! would wake the runtime's thread each time the supervisor reads an answer (the kernel
//! signals the freed space), one useless wake-up per round trip.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use offload_protocol::{encode_into, EncodeError, FromWorker};
use std::io::{self, Write as _};
use std::os::unix::net::UnixStream;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::Notify;

/// What [`Context::sent`](crate::Context::sent) lets wait to be written to the supervisor: 1 MiB.
pub const SEND_HIGH_WATER: usize = 1024 * 1024;

/// A writer buffer that grew past this (a large result) is given back after its write.
const KEEP_CAPACITY: usize = 1024 * 1024;

#[derive(Debug, Default)]
struct Shared {
    buf: Mutex<Vec<u8>>,
    /// Wakes the writer: new frames, or every sender gone.
    wake: Notify,
    /// Every [`Outbox`] is dropped: write what is left and end.
    closed: AtomicBool,
    /// A write failed (the supervisor is gone): frames are dropped from then on.
    broken: AtomicBool,
    /// The writer task holds bytes it has not written yet (set under `buf`'s lock when it
    /// takes them): [`Outbox::flush_now`] must not write past them.
    writer_holds: AtomicBool,
    /// The socket (non-blocking), for [`Outbox::flush_now`].
    direct: Option<UnixStream>,
    /// Bytes the writer task took from `buf` and has not written yet.
    writing: AtomicUsize,
    /// Woken (every waiter) whenever the writer wrote what it held: [`Outbox::room`].
    room: Notify,
}

impl Shared {
    /// Bytes queued and not yet handed to the kernel.
    fn unsent(&self) -> usize {
        let queued = self.buf.lock().unwrap_or_else(|e| e.into_inner()).len();
        queued + self.writing.load(Ordering::Acquire)
    }
}

/// Marks the end when the last [`Outbox`] clone goes.
#[derive(Debug)]
struct Senders(Arc<Shared>);

impl Drop for Senders {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::SeqCst);
        self.0.wake.notify_one();
    }
}

/// A cheap, cloneable handle that queues frames for the writer task.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    senders: Arc<Senders>,
    max_frame: usize,
}

impl Outbox {
    /// Starts the writer task on `sink` (non-blocking); it ends when every `Outbox` is
    /// dropped.
    pub(crate) fn start(sink: UnixStream, max_frame: usize) -> (Self, tokio::task::JoinHandle<()>) {
        let shared = Arc::new(Shared {
            direct: sink.try_clone().ok(),
            ..Shared::default()
        });
        let writer = tokio::spawn(write_loop(Arc::clone(&shared), sink));
        (
            Self {
                senders: Arc::new(Senders(shared)),
                max_frame,
            },
            writer,
        )
    }

    /// Queues `msg`.
    ///
    /// # Errors
    ///
    /// [`EncodeError::FrameTooLarge`] when it would exceed the frame limit; nothing is sent.
    pub(crate) fn try_send(&self, msg: &FromWorker) -> Result<(), EncodeError> {
        self.try_send_frame(msg)
    }

    /// Queues any frame that serializes as a [`FromWorker`] message would (a borrowed form
    /// of one).
    ///
    /// # Errors
    ///
    /// As [`try_send`](Self::try_send).
    pub(crate) fn try_send_frame(&self, msg: &impl serde::Serialize) -> Result<(), EncodeError> {
        let shared = &self.senders.0;
        if shared.broken.load(Ordering::Relaxed) {
            return Ok(());
        }
        {
            let mut buf = shared.buf.lock().unwrap_or_else(|e| e.into_inner());
            encode_into(msg, self.max_frame, &mut buf)?;
        }
        shared.wake.notify_one();
        Ok(())
    }

    /// Ends the writer once what is queued is written, even while clones live on (a
    /// [`Control`](crate::Control) kept by the application must not hold the exit).
    pub(crate) fn close(&self) {
        self.senders.0.closed.store(true, Ordering::SeqCst);
        self.senders.0.wake.notify_one();
        self.senders.0.room.notify_waiters();
    }

    /// Queues one frame already encoded (without its newline): the descriptor replies
    /// (`NODE_HANDLE_ACK` / `NODE_HANDLE_NACK`), which are not [`FromWorker`] messages.
    pub(crate) fn send_line(&self, line: &[u8]) {
        let shared = &self.senders.0;
        if shared.broken.load(Ordering::Relaxed) {
            return;
        }
        {
            let mut buf = shared.buf.lock().unwrap_or_else(|e| e.into_inner());
            buf.extend_from_slice(line);
            buf.push(b'\n');
        }
        shared.wake.notify_one();
    }

    /// Writes what is queued now, from the caller, if the socket takes it at once and the
    /// writer task holds nothing older; whatever is left stays for the writer task. For an
    /// answer that should not wait until the runtime's thread is free again (a job that held
    /// the thread for a while: the next jobs of its batch may do the same).
    pub(crate) fn flush_now(&self) {
        let shared = &self.senders.0;
        let Some(direct) = &shared.direct else {
            return;
        };
        let mut buf = shared.buf.lock().unwrap_or_else(|e| e.into_inner());
        if buf.is_empty()
            || shared.writer_holds.load(Ordering::Acquire)
            || shared.broken.load(Ordering::Relaxed)
        {
            return;
        }
        let mut written = 0;
        while written < buf.len() {
            match (&*direct).write(&buf[written..]) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Full, or broken: the writer task waits for room, or finds out.
                Err(_) => break,
            }
        }
        buf.drain(..written);
        drop(buf);
        if written > 0 {
            shared.room.notify_waiters();
        }
    }

    /// Waits until at most `limit` bytes wait to be written to the supervisor (at once when
    /// that is so already, or when the channel is broken or closed). What the supervisor does
    /// not read waits in this process: a sender that waits here keeps that bounded.
    pub(crate) async fn room(&self, limit: usize) {
        let shared = &self.senders.0;
        loop {
            let notified = shared.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if shared.broken.load(Ordering::SeqCst)
                || shared.closed.load(Ordering::SeqCst)
                || shared.unsent() <= limit
            {
                return;
            }
            notified.await;
        }
    }

    /// Queues `msg`, dropping it (with a note on stderr) if it is too large.
    pub(crate) fn send(&self, msg: &FromWorker) {
        if let Err(e) = self.try_send(msg) {
            eprintln!("offload worker: message not sent: {e}");
        }
    }
}

async fn write_loop(shared: Arc<Shared>, sink: UnixStream) {
    let mut sink = Sink {
        stream: sink,
        waiting: None,
    };
    let mut local: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        {
            let mut buf = shared.buf.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut *buf, &mut local);
            if !local.is_empty() {
                shared.writer_holds.store(true, Ordering::Release);
                shared.writing.store(local.len(), Ordering::Release);
            }
        }
        if !local.is_empty() {
            let written = sink.write_all(&local).await;
            shared.writer_holds.store(false, Ordering::Release);
            shared.writing.store(0, Ordering::Release);
            if written.is_err() {
                // The supervisor is gone; the reading side sees the end of the channel.
                shared.broken.store(true, Ordering::SeqCst);
                shared.room.notify_waiters();
                return;
            }
            shared.room.notify_waiters();
            local.clear();
            if local.capacity() > KEEP_CAPACITY {
                local = Vec::with_capacity(64 * 1024);
            }
            continue;
        }
        if shared.closed.load(Ordering::SeqCst) {
            // Every frame was appended before the last sender went: one more swap has them.
            let rest = {
                let mut buf = shared.buf.lock().unwrap_or_else(|e| e.into_inner());
                // From here on nothing may be written past `rest`.
                shared.writer_holds.store(true, Ordering::Release);
                std::mem::take(&mut *buf)
            };
            if !rest.is_empty() {
                let _ = sink.write_all(&rest).await;
            }
            return;
        }
        shared.wake.notified().await;
    }
}

/// The socket, registered with the runtime (for writability) only while it is full.
struct Sink {
    stream: UnixStream,
    waiting: Option<AsyncFd<UnixStream>>,
}

impl Sink {
    async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = match (&self.stream).write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let fd = match &mut self.waiting {
                        Some(fd) => fd,
                        none => none.insert(crate::fd::register(
                            self.stream.try_clone()?,
                            Interest::WRITABLE,
                        )?),
                    };
                    let mut guard = fd.writable().await?;
                    match guard.try_io(|fd| fd.get_ref().write(buf)) {
                        Ok(written) => written,
                        // Still full: readiness cleared, wait for the next edge.
                        Err(_) => continue,
                    }
                }
                written => written,
            };
            match n {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Written out: no more writability wake-ups.
        self.waiting = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    /// `flush_now` writes from the caller: the frame is on the socket although the writer
    /// task never ran (this test does not yield to the runtime until it has read it).
    #[tokio::test(flavor = "current_thread")]
    async fn flush_now_writes_without_the_writer_task() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let (outbox, _writer) = Outbox::start(ours, 1 << 20);
        outbox.send_line(br#"{"type":"result","id":"7","value":1}"#);
        outbox.flush_now();
        theirs.set_nonblocking(true).unwrap();
        let mut got = [0u8; 256];
        let n = theirs.read(&mut got).expect("written by flush_now");
        assert_eq!(
            &got[..n],
            b"{\"type\":\"result\",\"id\":\"7\",\"value\":1}\n"
        );
        // Nothing is left for the writer: a second flush writes nothing more.
        outbox.flush_now();
        assert_eq!(
            theirs.read(&mut got).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }
}
