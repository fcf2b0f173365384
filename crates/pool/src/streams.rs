//! Byte streams of a job ([`ChildPool::run_with_streams`], `docs/protocol.md` §10): the pool
//! makes one `AF_UNIX` socket pair per stream, passes one end with the run (§9) and gives the
//! caller the other as a [`StreamWriter`] (the job's input) or a [`StreamReader`] (its output).
//! The kernel's socket buffer is the backpressure; a writer whose reader stops reading fails
//! with [`StreamError::Stalled`](offload_protocol::StreamError::Stalled) after the stall limit,
//! one whose reader is gone with [`StreamError::Closed`](offload_protocol::StreamError::Closed).
//!
//! ```no_run
//! # async fn demo(pool: offload_pool::ChildPool) -> Result<(), Box<dyn std::error::Error>> {
//! use offload_pool::{RunOptions, StreamOptions};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let (job, streams) = pool
//!     .run_with_streams("gzip", serde_json::json!({}), RunOptions::default(), StreamOptions::both())
//!     .await?;
//! let (mut input, mut output) = (streams.input.unwrap(), streams.output.unwrap());
//! let feed = async move {
//!     input.write_all(b"many bytes").await?;
//!     input.shutdown().await // the job reads its end of file
//! };
//! let mut out = Vec::new();
//! let (fed, read) = tokio::join!(feed, output.read_to_end(&mut out));
//! fed?;
//! read?;
//! println!("{:?}", job.result().await.outcome);
//! # Ok(()) }
//! ```

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use offload_protocol::{StreamReader, StreamSpec, StreamWriter, DEFAULT_STREAM_STALL};
use serde_json::Value;

use crate::error::PoolError;
use crate::options::RunOptions;
use crate::params::Params;
use crate::pool::{ChildPool, JobHandle};

/// Which streams a job gets, and their stall limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamOptions {
    /// The job reads an input stream the caller writes.
    pub input: bool,
    /// The job writes an output stream the caller reads.
    pub output: bool,
    /// How long either writer waits for its reader to take anything before it fails with
    /// `StreamError::Stalled` (default [`DEFAULT_STREAM_STALL`], 30 s). The job gets it in
    /// its run, so its SDK enforces it on the job's writes.
    pub stall: Duration,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self::both()
    }
}

impl StreamOptions {
    /// An input and an output stream.
    pub fn both() -> Self {
        Self {
            input: true,
            output: true,
            stall: DEFAULT_STREAM_STALL,
        }
    }

    /// An input stream only.
    pub fn input() -> Self {
        Self {
            output: false,
            ..Self::both()
        }
    }

    /// An output stream only.
    pub fn output() -> Self {
        Self {
            input: false,
            ..Self::both()
        }
    }

    /// Sets the stall limit.
    #[must_use]
    pub fn stall(mut self, limit: Duration) -> Self {
        self.stall = limit;
        self
    }
}

/// The caller's ends of a job's streams.
#[derive(Debug)]
#[non_exhaustive]
pub struct JobStreams {
    /// Write the job's input here; `shutdown` ends it (the job reads its end of file).
    pub input: Option<StreamWriter>,
    /// Read the job's output here, to its end of file.
    pub output: Option<StreamReader>,
}

impl ChildPool {
    /// Submits a job with byte streams (`docs/protocol.md` §10): the job's SDK gives it an
    /// input stream to read (Rust `Context::input_stream`, Node `ctx.inputStream`, Python
    /// `ctx.input_stream()`) and an output stream to write, and the caller gets the other
    /// ends. Such a job has one attempt (as every job with descriptors). Must be called
    /// inside a tokio runtime with I/O enabled.
    ///
    /// # Errors
    ///
    /// As [`run_with_fds`](Self::run_with_fds); [`PoolError::OutOfRange`] for a stall limit
    /// above [`MAX_DURATION`](offload_process::timer::MAX_DURATION) (a zero limit fails a
    /// writer as soon as it has to wait);
    /// [`PoolError::Streams`] when the sockets cannot be made. A worker whose SDK does not
    /// know streams gets the sockets as plain descriptors and closes them when it answers:
    /// the caller's ends then see `StreamError::Closed` or an end of file, never a hang.
    pub async fn run_with_streams(
        &self,
        job: &str,
        params: Value,
        mut opts: RunOptions,
        streams: StreamOptions,
    ) -> Result<(JobHandle, JobStreams), PoolError> {
        offload_process::timer::check("stall", streams.stall)?;
        let io = |e: std::io::Error| PoolError::Streams(e.to_string());
        let mut fds: Vec<OwnedFd> = Vec::new();
        let (mut input, mut output) = (None, None);
        let (mut input_at, mut output_at) = (None, None);
        if streams.input {
            let (mine, theirs) = pair().map_err(io)?;
            input = Some(StreamWriter::from_fd(mine.into(), streams.stall).map_err(io)?);
            input_at = Some(index(&fds));
            fds.push(theirs.into());
        }
        if streams.output {
            let (mine, theirs) = pair().map_err(io)?;
            output = Some(StreamReader::from_fd(mine.into()).map_err(io)?);
            output_at = Some(index(&fds));
            fds.push(theirs.into());
        }
        opts.streams = Some(StreamSpec::new(input_at, output_at, streams.stall));
        opts.fds_optional = false;
        let handle = self
            .submit_for_handle(job, Params::Value(params), opts, fds)
            .await?;
        Ok((handle, JobStreams { input, output }))
    }
}

/// A socket pair; the job's end non-blocking (the flag belongs to the socket, so it crosses
/// with it): Node's event loop takes a passed socket as it is, and a blocking one would block
/// its thread on a full buffer.
fn pair() -> std::io::Result<(UnixStream, UnixStream)> {
    let (mine, theirs) = UnixStream::pair()?;
    theirs.set_nonblocking(true)?;
    Ok((mine, theirs))
}

fn index(fds: &[OwnedFd]) -> u32 {
    u32::try_from(fds.len()).unwrap_or(u32::MAX)
}
