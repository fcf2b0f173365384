//! What a handler sees: [`Context`] and [`JobError`].

use std::sync::Arc;
use std::time::SystemTime;

use offload_protocol::{ErrorInfo, Event, FromWorker, Progress, Receiver};
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::outbox::Outbox;

/// Why a job's token fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    Cancelled,
    Deadline,
}

/// A job's view of the worker: its id, progress, events and cancellation.
#[derive(Debug, Clone)]
pub struct Context {
    pub(crate) inner: Arc<ContextInner>,
}

#[derive(Debug)]
pub(crate) struct ContextInner {
    pub(crate) id: String,
    pub(crate) job: String,
    pub(crate) deadline: Option<u64>,
    pub(crate) token: CancellationToken,
    pub(crate) reason: std::sync::Mutex<Option<StopReason>>,
    pub(crate) outbox: Outbox,
    /// Descriptors passed with the run, until the handler takes them (closed with the
    /// context otherwise).
    pub(crate) fds: std::sync::Mutex<Vec<std::os::fd::OwnedFd>>,
    /// The run's streams, until the handler takes them.
    pub(crate) streams: std::sync::Mutex<crate::streams::RunStreams>,
}

impl Context {
    /// The job's id on the channel.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The job's name as the supervisor sent it.
    pub fn job(&self) -> &str {
        &self.inner.job
    }

    /// Takes the descriptors the supervisor passed with this run (`ChildPool::run_with_fds`,
    /// `ChildJob::exec_with_fds`; `docs/protocol.md` §9), in order; empty for a run without
    /// any, and on a second call. Those not taken are closed when the job ends.
    pub fn take_fds(&self) -> Vec<std::os::fd::OwnedFd> {
        std::mem::take(&mut *self.inner.fds.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Takes the job's input stream (`ChildPool::run_with_streams`; `docs/protocol.md`
    /// §10): an [`AsyncRead`](tokio::io::AsyncRead) of what the caller writes, to its end
    /// of file. The kernel's socket buffer is the backpressure: the caller waits while the
    /// job does not read.
    ///
    /// # Errors
    ///
    /// `NoInputStream` when the run has none (or it was taken already).
    pub fn input_stream(&self) -> Result<offload_protocol::StreamReader, JobError> {
        let fd = self.streams().input.take();
        let fd = fd.ok_or_else(|| JobError::new("NoInputStream", "the run has no input stream"))?;
        Ok(offload_protocol::StreamReader::from_fd(fd)?)
    }

    /// Takes the job's output stream: an [`AsyncWrite`](tokio::io::AsyncWrite) the caller
    /// reads. A write waits while the caller does not read; one that waited for the run's
    /// stall limit fails with [`StreamError::Stalled`](offload_protocol::StreamError) (as a
    /// job error: `StreamStalled`, naming the limit), one whose reader is gone with
    /// `StreamClosed`. `shutdown` ends the stream; it also ends when the job answers.
    ///
    /// # Errors
    ///
    /// `NoOutputStream` when the run has none (or it was taken already).
    pub fn output_stream(&self) -> Result<offload_protocol::StreamWriter, JobError> {
        let (fd, stall) = {
            let mut s = self.streams();
            (s.output.take(), s.stall)
        };
        let fd =
            fd.ok_or_else(|| JobError::new("NoOutputStream", "the run has no output stream"))?;
        Ok(offload_protocol::StreamWriter::from_fd(fd, stall)?)
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, crate::streams::RunStreams> {
        self.inner.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the streams the handler did not take.
    pub(crate) fn close_streams(&self) {
        let mut s = self.streams();
        s.input = None;
        s.output = None;
    }

    /// The soft deadline, if any.
    pub fn deadline(&self) -> Option<SystemTime> {
        self.inner
            .deadline
            .map(|ms| SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms))
    }

    /// Reports progress; delivered in order, the supervisor keeps the last value.
    pub fn progress(&self, data: impl Serialize) {
        let data = serde_json::to_value(data).unwrap_or(Value::Null);
        self.inner.outbox.send(&FromWorker::Progress(Progress::new(
            self.inner.id.clone(),
            data,
        )));
    }

    /// Waits until at most [`SEND_HIGH_WATER`](crate::SEND_HIGH_WATER) bytes of this
    /// worker's frames wait to be written to the supervisor; at once when that is so already.
    ///
    /// [`progress`](Self::progress) and [`emit`](Self::emit) only queue: a job that sends
    /// faster than the application takes its events (the host holds a worker's channel while
    /// its listeners are behind, `event_backpressure`) would grow this process without bound.
    /// Awaiting `sent()` after each frame, or every few, paces the job to its reader instead:
    ///
    /// ```no_run
    /// # async fn job(ctx: offload_worker::Context) {
    /// for i in 0..1_000_000 {
    ///     ctx.progress(i);
    ///     ctx.sent().await;
    /// }
    /// # }
    /// ```
    pub async fn sent(&self) {
        self.inner.outbox.room(crate::SEND_HIGH_WATER).await;
    }

    /// Emits a named event to the application (receiver `all`).
    pub fn emit(&self, name: &str, data: impl Serialize) {
        self.emit_to(name, data, Receiver::All);
    }

    /// Emits a named event for a given receiver.
    pub fn emit_to(&self, name: &str, data: impl Serialize, receiver: Receiver) {
        let data = serde_json::to_value(data).unwrap_or(Value::Null);
        let event = Event::new(name, data, receiver).for_job(self.inner.id.clone());
        self.inner.outbox.send(&FromWorker::Event(event));
    }

    /// The job's cancellation token: fires on `cancel`, at the deadline, and at the end of a
    /// shutdown's grace period.
    pub fn cancelled(&self) -> &CancellationToken {
        &self.inner.token
    }

    /// Whether the token has fired.
    pub fn is_cancelled(&self) -> bool {
        self.inner.token.is_cancelled()
    }

    /// Sleeps for `duration` unless cancelled first.
    ///
    /// # Errors
    ///
    /// [`JobError::cancelled`] when the token fires first.
    pub async fn sleep(&self, duration: std::time::Duration) -> Result<(), JobError> {
        tokio::select! {
            () = tokio::time::sleep(duration) => Ok(()),
            () = self.inner.token.cancelled() => Err(JobError::cancelled()),
        }
    }

    pub(crate) fn stop(&self, reason: StopReason) {
        let mut r = self.inner.reason.lock().unwrap_or_else(|e| e.into_inner());
        r.get_or_insert(reason);
        drop(r);
        self.inner.token.cancel();
    }

    pub(crate) fn stop_reason(&self) -> Option<StopReason> {
        *self.inner.reason.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A job's failure: `{name, message, stack}` on the wire, with `retry: false` when it is
/// [`non_retryable`](JobError::non_retryable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    /// The error's class, e.g. `ValueError`, `Cancelled`.
    pub name: String,
    /// What happened.
    pub message: String,
    /// Where, if known.
    pub stack: Option<String>,
    /// `false`: the job goes straight to dead, whatever attempts it has left (default `true`:
    /// retried while attempts remain).
    pub retry: bool,
}

impl JobError {
    /// An error named `name`.
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            message: message.into(),
            stack: None,
            retry: true,
        }
    }

    /// A generic `Error`.
    pub fn msg(message: impl Into<String>) -> Self {
        Self::new("Error", message)
    }

    /// The job stopped because it was cancelled.
    pub fn cancelled() -> Self {
        Self::new("Cancelled", "the job was cancelled")
    }

    /// Sets a stack or backtrace text.
    #[must_use]
    pub fn with_stack(mut self, stack: impl Into<String>) -> Self {
        self.stack = Some(stack.into());
        self
    }

    /// Marks the error as not retryable: the job goes straight to dead, whatever attempts it
    /// has left (`retry: false` on the wire). For failures no retry can fix: bad input, a
    /// missing record.
    ///
    /// ```
    /// use offload_worker::JobError;
    /// let e = JobError::new("ValueError", "no such user").non_retryable();
    /// assert!(!e.retry);
    /// ```
    #[must_use]
    pub fn non_retryable(mut self) -> Self {
        self.retry = false;
        self
    }

    /// From any error: its `Display` as message, its source chain as stack, `name` as class.
    pub fn from_error(name: &str, err: &(dyn std::error::Error + 'static)) -> Self {
        let mut stack = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            stack.push_str("\ncaused by: ");
            stack.push_str(&s.to_string());
            source = s.source();
        }
        Self::new(name, err.to_string()).with_stack(stack)
    }

    pub(crate) fn into_info(self) -> ErrorInfo {
        let mut info = ErrorInfo::new(self.name, self.message);
        if let Some(s) = self.stack {
            info = info.with_stack(s);
        }
        if !self.retry {
            info = info.non_retryable();
        }
        info
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

impl std::error::Error for JobError {}

impl From<String> for JobError {
    fn from(message: String) -> Self {
        Self::msg(message)
    }
}

impl From<&str> for JobError {
    fn from(message: &str) -> Self {
        Self::msg(message)
    }
}

impl From<std::io::Error> for JobError {
    /// `IoError`, or the stream error it carries (`StreamStalled`, `StreamClosed`).
    fn from(e: std::io::Error) -> Self {
        match offload_protocol::StreamError::from_io(&e) {
            Some(s) => Self::new(s.name(), s.to_string()),
            None => Self::from_error("IoError", &e),
        }
    }
}

impl From<serde_json::Error> for JobError {
    fn from(e: serde_json::Error) -> Self {
        Self::from_error("TypeError", &e)
    }
}

impl From<Box<dyn std::error::Error + Send + Sync>> for JobError {
    fn from(e: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Self::from_error("Error", e.as_ref())
    }
}
