//! Byte streams of a job (`docs/protocol.md` §10): which of a run's descriptors are its input
//! and output streams ([`StreamSpec`], on the wire), the typed errors of either end
//! ([`StreamError`]), and — with the `tokio` feature — both ends' I/O over a passed
//! `AF_UNIX` stream socket: [`StreamReader`] and [`StreamWriter`], whose writes fail with
//! [`StreamError::Stalled`] when the reader takes nothing for the stall limit and with
//! [`StreamError::Closed`] when the reader is gone.
//!
//! The kernel's socket buffer is the backpressure: a writer waits while its reader does not
//! read; nothing is copied through JSON.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The default stall limit: how long a writer may wait for its reader to take anything
/// before [`StreamError::Stalled`] (30 s).
pub const DEFAULT_STREAM_STALL: Duration = Duration::from_secs(30);

/// The `streams` of a `run`: which of the run's descriptors (by index) are its streams.
///
/// ```json
/// {"input":0,"output":1,"stall_ms":30000}
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StreamSpec {
    /// The descriptor the job reads its input from (the supervisor writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<u32>,
    /// The descriptor the job writes its output to (the supervisor reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<u32>,
    /// The stall limit of either writer, milliseconds.
    pub stall_ms: u64,
}

impl StreamSpec {
    /// Streams at these indices with this stall limit.
    pub fn new(input: Option<u32>, output: Option<u32>, stall: Duration) -> Self {
        Self {
            input,
            output,
            stall_ms: u64::try_from(stall.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The stall limit.
    pub fn stall(&self) -> Duration {
        Duration::from_millis(self.stall_ms)
    }
}

/// Why a stream failed. The names ([`name`](Self::name)) are the job errors the SDKs fail a
/// job with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The reader took nothing for `limit` while the writer waited: it stopped reading.
    #[error(
        "the stream's reader took nothing for {limit:?} (the stall limit): it stopped reading"
    )]
    Stalled {
        /// The stall limit.
        limit: Duration,
    },
    /// The other end was closed before this end was done.
    #[error("the stream's other end was closed early")]
    Closed,
}

impl StreamError {
    /// The error's name as a job error: `StreamStalled`, `StreamClosed`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Stalled { .. } => "StreamStalled",
            Self::Closed => "StreamClosed",
        }
    }

    /// The stream error an I/O error carries, if any: one made by [`StreamWriter`], or a
    /// broken pipe / reset connection (the reader went away).
    pub fn from_io(e: &std::io::Error) -> Option<Self> {
        if let Some(s) = e.get_ref().and_then(|i| i.downcast_ref::<Self>()) {
            return Some(s.clone());
        }
        matches!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        )
        .then_some(Self::Closed)
    }
}

impl From<StreamError> for std::io::Error {
    fn from(e: StreamError) -> Self {
        let kind = match e {
            StreamError::Stalled { .. } => std::io::ErrorKind::TimedOut,
            StreamError::Closed => std::io::ErrorKind::BrokenPipe,
        };
        std::io::Error::new(kind, e)
    }
}

#[cfg(feature = "tokio")]
pub use io::{StreamReader, StreamWriter};

#[cfg(feature = "tokio")]
mod io {
    use std::future::Future;
    use std::io;
    use std::os::fd::OwnedFd;
    use std::pin::Pin;
    use std::task::{ready, Context, Poll};
    use std::time::Duration;

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::UnixStream;
    use tokio::time::{Instant, Sleep};

    use super::StreamError;

    /// `fd` as a tokio socket, its unused direction shut (`ENOTCONN` of a peer already
    /// gone is ignored: the first read or write tells).
    fn unix(fd: OwnedFd, unused: std::net::Shutdown) -> io::Result<UnixStream> {
        let std = std::os::unix::net::UnixStream::from(fd);
        let _ = std.shutdown(unused);
        std.set_nonblocking(true)?;
        UnixStream::from_std(std)
    }

    /// The reading end of a stream: an [`AsyncRead`] to its end of file.
    #[derive(Debug)]
    pub struct StreamReader {
        inner: UnixStream,
    }

    impl StreamReader {
        /// Reads from `fd`, an `AF_UNIX` stream socket (its writing direction is shut).
        ///
        /// # Errors
        ///
        /// `fd` is not a socket, or the runtime has no I/O driver.
        pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
            let inner = unix(fd, std::net::Shutdown::Write)?;
            Ok(Self { inner })
        }
    }

    impl AsyncRead for StreamReader {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    /// The writing end of a stream: an [`AsyncWrite`] that waits while its reader does not
    /// read (the kernel's buffer is full), and fails with [`StreamError::Stalled`] once it
    /// waited `stall` without any progress, or [`StreamError::Closed`] when the reader is
    /// gone. `shutdown` ends the stream (the reader sees its end of file).
    #[derive(Debug)]
    pub struct StreamWriter {
        inner: UnixStream,
        stall: Duration,
        /// Armed while a write waits; reset by any progress.
        waiting: Option<Pin<Box<Sleep>>>,
        failed: Option<StreamError>,
    }

    impl StreamWriter {
        /// Writes to `fd`, an `AF_UNIX` stream socket (its reading direction is shut), with
        /// this stall limit.
        ///
        /// # Errors
        ///
        /// `fd` is not a socket, or the runtime has no I/O driver.
        pub fn from_fd(fd: OwnedFd, stall: Duration) -> io::Result<Self> {
            let inner = unix(fd, std::net::Shutdown::Read)?;
            Ok(Self {
                inner,
                stall,
                waiting: None,
                failed: None,
            })
        }

        /// The stall limit.
        pub fn stall(&self) -> Duration {
            self.stall
        }

        fn fail(&mut self, e: StreamError) -> io::Error {
            self.failed = Some(e.clone());
            self.waiting = None;
            e.into()
        }

        /// Maps an I/O result of the socket: progress disarms the stall timer, waiting arms
        /// it, and its expiry is [`StreamError::Stalled`].
        fn watch<T>(
            &mut self,
            cx: &mut Context<'_>,
            r: Poll<io::Result<T>>,
        ) -> Poll<io::Result<T>> {
            match r {
                Poll::Ready(Ok(v)) => {
                    self.waiting = None;
                    Poll::Ready(Ok(v))
                }
                Poll::Ready(Err(e)) => match StreamError::from_io(&e) {
                    Some(s) => Poll::Ready(Err(self.fail(s))),
                    None => Poll::Ready(Err(e)),
                },
                Poll::Pending => {
                    let limit = self.stall;
                    let sleep = self
                        .waiting
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline(limit))));
                    ready!(sleep.as_mut().poll(cx));
                    Poll::Ready(Err(self.fail(StreamError::Stalled { limit })))
                }
            }
        }
    }

    fn deadline(limit: Duration) -> Instant {
        let now = Instant::now();
        now.checked_add(limit)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
    }

    impl AsyncWrite for StreamWriter {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            if let Some(e) = &self.failed {
                return Poll::Ready(Err(e.clone().into()));
            }
            let r = Pin::new(&mut self.inner).poll_write(cx, buf);
            self.watch(cx, r)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let r = Pin::new(&mut self.inner).poll_flush(cx);
            self.watch(cx, r)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let r = Pin::new(&mut self.inner).poll_shutdown(cx);
            self.watch(cx, r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_to_worker, encode, Run, ToWorker};

    #[test]
    fn a_run_carries_its_streams_and_old_runs_have_none() {
        let run = Run::new("j1", "gzip", serde_json::json!({})).with_streams(StreamSpec::new(
            Some(0),
            None,
            Duration::from_millis(300),
        ));
        let line = encode(&ToWorker::Run(run), 1024).unwrap();
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(
            text.contains(r#""streams":{"input":0,"stall_ms":300}"#),
            "{text}"
        );
        match decode_to_worker(&line[..line.len() - 1]).unwrap() {
            crate::Decoded::Message(ToWorker::Run(r)) => {
                let s = r.streams.unwrap();
                assert_eq!(
                    (s.input, s.output, s.stall()),
                    (Some(0), None, Duration::from_millis(300))
                );
            }
            other => panic!("{other:?}"),
        }
        match decode_to_worker(br#"{"type":"run","id":"j2","job":"x"}"#).unwrap() {
            crate::Decoded::Message(ToWorker::Run(r)) => assert_eq!(r.streams, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn io_errors_map_to_stream_errors() {
        let limit = Duration::from_millis(5);
        let e: std::io::Error = StreamError::Stalled { limit }.into();
        assert_eq!(
            StreamError::from_io(&e),
            Some(StreamError::Stalled { limit })
        );
        assert_eq!(StreamError::Stalled { limit }.name(), "StreamStalled");
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(StreamError::from_io(&pipe), Some(StreamError::Closed));
        let other = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(StreamError::from_io(&other), None);
    }
}
