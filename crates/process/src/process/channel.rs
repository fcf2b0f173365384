//! The supervisor's two halves of a worker's channel, each registered with the runtime for what
//! it waits on only.
//!
//! A `tokio::net::UnixStream` is registered for readability *and* writability, edge-triggered:
//! each time the worker reads a frame and frees room in the socket, the kernel reports the
//! socket writable again, and a parked runtime thread wakes for nothing. Frames are written with
//! non-blocking writes by whoever queues them (`outbox.rs`); only when the socket is full does
//! the writer task wait, on a registration for writability made for that wait (a duplicate of
//! the descriptor) and dropped once the socket has taken everything. The reading half is
//! registered for readability only. (The Rust worker SDK measured the same wasted wake-up on
//! its side: 2.1–2.4 → 1.04 switches per round trip, `bench/peers/README.md`.)
#![allow(unsafe_code)]

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, Interest, ReadBuf};

/// Splits a worker's channel into its reading and writing halves.
pub(crate) fn split(stream: tokio::net::UnixStream) -> io::Result<(ReadHalf, WriteHalf)> {
    let stream = stream.into_std()?;
    stream.set_nonblocking(true)?;
    let writer = stream.try_clone()?;
    let reader = register(stream, Interest::READABLE)?;
    Ok((ReadHalf(reader), WriteHalf(writer)))
}

/// Splits a worker's channel into a reading half registered with no runtime (the host reads
/// it, `host_read.rs`) and the writing half.
pub(crate) fn split_unregistered(
    stream: tokio::net::UnixStream,
) -> io::Result<(UnixStream, WriteHalf)> {
    let stream = stream.into_std()?;
    stream.set_nonblocking(true)?;
    let writer = stream.try_clone()?;
    Ok((stream, WriteHalf(writer)))
}

/// Registers `stream` with the current runtime for `interest` only.
fn register(stream: UnixStream, interest: Interest) -> io::Result<AsyncFd<UnixStream>> {
    // SAFETY: the `AsyncFd` owns `stream`, so its descriptor stays open (and is not reused) for
    // as long as it is registered.
    unsafe { AsyncFd::register_with_interest(stream, interest) }.map_err(|e| e.into_parts().1)
}

/// The reading half: readable-only registration.
#[derive(Debug)]
pub(crate) struct ReadHalf(AsyncFd<UnixStream>);

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| fd.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                // Not readable after all: readiness cleared, wait for the next edge.
                Err(_would_block) => {}
            }
        }
    }
}

/// The writing half: a non-blocking socket, not registered with the runtime. Dropping it shuts
/// the socket down for writing (the worker reads end of file), as tokio's halves do.
#[derive(Debug)]
pub(crate) struct WriteHalf(UnixStream);

impl Drop for WriteHalf {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Write);
    }
}

impl WriteHalf {
    /// One non-blocking write (`WouldBlock` when the socket is full).
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        (&self.0).write(buf)
    }

    /// A registration for writability, to wait while the socket is full; drop it once written
    /// out (it holds a duplicate of the descriptor).
    pub(crate) fn waiter(&self) -> io::Result<AsyncFd<UnixStream>> {
        register(self.0.try_clone()?, Interest::WRITABLE)
    }
}

impl AsFd for WriteHalf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn bytes_cross_both_ways_and_end_of_file_is_read() {
        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        let (mut rd, wr) = split(ours).unwrap();
        let (mut theirs_rd, theirs_wr) = theirs.into_split();
        assert_eq!(wr.try_write(b"ping\n").unwrap(), 5);
        let mut got = [0u8; 5];
        theirs_rd.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping\n");
        theirs_wr.try_write(b"pong\n").unwrap();
        let mut got = [0u8; 5];
        rd.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong\n");
        drop(theirs_wr);
        drop(theirs_rd);
        let mut rest = Vec::new();
        assert_eq!(rd.read_to_end(&mut rest).await.unwrap(), 0);
        // Dropping our writing half is the end of file on their side.
        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        let (_rd, wr) = split(ours).unwrap();
        drop(wr);
        let mut theirs = theirs;
        assert_eq!(theirs.read_to_end(&mut rest).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_full_socket_would_block_and_its_waiter_wakes_when_room_is_made() {
        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        let (_rd, wr) = split(ours).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0usize;
        loop {
            match wr.try_write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        let waiter = wr.waiter().unwrap();
        let reader = tokio::spawn(async move {
            let mut theirs = theirs;
            let mut buf = vec![0u8; sent];
            theirs.read_exact(&mut buf).await.unwrap();
            theirs
        });
        let mut guard = tokio::time::timeout(std::time::Duration::from_secs(10), waiter.writable())
            .await
            .expect("writable once the peer reads")
            .unwrap();
        guard.clear_ready();
        assert!(wr.try_write(b"x").unwrap() == 1);
        drop(reader.await.unwrap());
    }
}
