//! An async, bounded frame reader (feature `tokio`).

use std::collections::VecDeque;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::DecodeError;
use crate::frame::LineFramer;

/// Why [`FrameReader::next_frame`] failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Reading the channel failed.
    #[error("channel read failed: {0}")]
    Io(#[from] std::io::Error),
    /// A frame broke the framing rules (too large).
    #[error(transparent)]
    Frame(#[from] DecodeError),
    /// The channel closed in the middle of a frame.
    #[error("channel closed in the middle of a frame ({pending} bytes without a newline)")]
    Truncated {
        /// The bytes of the unfinished frame.
        pending: usize,
    },
}

/// Reads frames from an async byte stream with a bounded buffer.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    framer: LineFramer,
    chunk: Box<[u8]>,
    ready: VecDeque<Result<Vec<u8>, DecodeError>>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader of frames of at most `max_frame` bytes.
    pub fn new(inner: R, max_frame: usize) -> Self {
        Self {
            inner,
            framer: LineFramer::new(max_frame),
            chunk: vec![0; 64 * 1024].into_boxed_slice(),
            ready: VecDeque::new(),
        }
    }

    /// The next frame (without its newline), or `None` at a clean end of stream.
    ///
    /// # Errors
    ///
    /// [`ReadError::Frame`] for an oversized line (reading may go on after it),
    /// [`ReadError::Truncated`] when the stream ends inside a frame, [`ReadError::Io`].
    pub async fn next_frame(&mut self) -> Result<Option<Vec<u8>>, ReadError> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Ok(Some(frame?));
            }
            let n = self.inner.read(&mut self.chunk).await?;
            if n == 0 {
                let pending = self.framer.pending();
                return if pending == 0 {
                    Ok(None)
                } else {
                    Err(ReadError::Truncated { pending })
                };
            }
            let ready = &mut self.ready;
            self.framer
                .push(&self.chunk[..n], |f| ready.push_back(f.map(<[u8]>::to_vec)));
        }
    }

    /// A frame already read and split off (no reading): after [`next_frame`](Self::next_frame),
    /// the other frames of the same read, so a consumer can handle a whole batch before it
    /// waits again.
    ///
    /// # Errors
    ///
    /// [`ReadError::Frame`] for an oversized line, as [`next_frame`](Self::next_frame).
    pub fn next_buffered(&mut self) -> Option<Result<Vec<u8>, ReadError>> {
        self.ready.pop_front().map(|f| f.map_err(ReadError::from))
    }

    /// The underlying stream.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

/// Writes the frames queued on `rx` to `sink` until every sender is gone, coalescing what is
/// already queued into one write (up to 256 KiB) so that a busy channel costs one system call
/// per batch, not per frame. Flushes at the end.
///
/// # Errors
///
/// The first write error (the peer is gone).
pub async fn write_frames<W>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    mut sink: W,
) -> std::io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    const BATCH: usize = 256 * 1024;
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        match rx.try_recv() {
            // The common quiet case: one frame, written as it is.
            Err(_) => sink.write_all(&first).await?,
            Ok(second) => {
                buf.clear();
                buf.extend_from_slice(&first);
                buf.extend_from_slice(&second);
                while buf.len() < BATCH {
                    match rx.try_recv() {
                        Ok(f) => buf.extend_from_slice(&f),
                        Err(_) => break,
                    }
                }
                sink.write_all(&buf).await?;
            }
        }
    }
    sink.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_split_across_reads_comes_out_whole_and_in_order() {
        use tokio::io::AsyncWriteExt;
        let (mut a, b) = tokio::io::duplex(1 << 16);
        let mut reader = FrameReader::new(b, 1024);
        // One read ends inside the second frame; the next completes it and brings two more.
        a.write_all(b"{\"a\":1}\n{\"b\"").await.unwrap();
        assert_eq!(reader.next_frame().await.unwrap().unwrap(), br#"{"a":1}"#);
        assert!(reader.next_buffered().is_none());
        a.write_all(b":2}\n{\"c\":3}\n{\"d\":4}\n").await.unwrap();
        assert_eq!(reader.next_frame().await.unwrap().unwrap(), br#"{"b":2}"#);
        // The rest of that read is there without reading again.
        assert_eq!(reader.next_buffered().unwrap().unwrap(), br#"{"c":3}"#);
        assert_eq!(reader.next_buffered().unwrap().unwrap(), br#"{"d":4}"#);
        assert!(reader.next_buffered().is_none());
        drop(a);
        assert!(reader.next_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn queued_frames_arrive_whole_and_in_order() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..1000 {
            tx.send(format!("{{\"n\":{i}}}\n").into_bytes()).unwrap();
        }
        drop(tx);
        let (a, b) = tokio::io::duplex(1 << 20);
        let writer = tokio::spawn(write_frames(rx, a));
        let mut reader = FrameReader::new(b, 1024);
        for i in 0..1000 {
            let f = reader.next_frame().await.unwrap().unwrap();
            assert_eq!(f, format!("{{\"n\":{i}}}").into_bytes());
        }
        writer.await.unwrap().unwrap();
        assert!(reader.next_frame().await.unwrap().is_none());
    }
}
