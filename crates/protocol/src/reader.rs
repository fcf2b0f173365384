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

    /// The underlying stream.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}
