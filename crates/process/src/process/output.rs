//! The output pumps: a job's stdout and stderr turned into bounded log lines (and the stderr
//! tail kept for error reports), or, in command mode, stdout collected as the result. Each
//! runs on a task of its own, so a job that writes a lot never slows its actor.
//!
//! With a log sink ([`ProcessOptions::log_sink`](super::ProcessOptions::log_sink)) every line
//! is sent there instead of the event stream, waiting while the sink is full: the pump stops reading, the pipe fills
//! and the job blocks on its own `write` — as with a terminal that scrolls slowly. Nothing is
//! dropped. The pump also answers *drain requests* ([`drain`]): it reads whatever its pipe
//! holds at that moment with non-blocking `read`s until the pipe is empty, sends it (a last
//! unterminated line too), then answers. The actor drains the pumps when an answer arrives,
//! before it reports the answer (see `docs/design/job-logs.md`).

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, oneshot};

use super::event::{OutputItem, ProcessEvent, Stream};
use crate::emitter::Emitter;
use crate::flow::{Credit, EventFlow};

/// Longest log line kept; the rest of a longer line is cut off.
pub const MAX_LOG_LINE: usize = 64 * 1024;
/// Stderr lines kept for error reports.
const STDERR_TAIL_LINES: usize = 40;
/// Bytes read at once.
const CHUNK: usize = 16 * 1024;

/// A request to a pump: read what the pipe holds now, then answer.
pub(super) type DrainRequest = oneshot::Sender<()>;

/// Where a pump's lines go.
pub(super) struct LineOut {
    pub(super) stream: Stream,
    pub(super) pid: u32,
    pub(super) emitter: Emitter,
    /// Stderr: the tail kept for error reports.
    pub(super) tail: Option<Arc<Mutex<VecDeque<String>>>>,
    /// The reliable, waiting sink.
    pub(super) sink: Option<mpsc::Sender<OutputItem>>,
    /// Backpressure without a sink: a line waits for a credit (`flow.rs`).
    pub(super) flow: Option<EventFlow>,
}

/// One line being assembled: at most [`MAX_LOG_LINE`] bytes kept.
#[derive(Default)]
struct Partial {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Partial {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty() && !self.truncated
    }

    fn push(&mut self, content: &[u8]) {
        let room = MAX_LOG_LINE.saturating_sub(self.bytes.len());
        if content.len() > room {
            self.truncated = true;
        }
        self.bytes
            .extend_from_slice(&content[..content.len().min(room)]);
    }

    fn take(&mut self) -> String {
        let mut text = String::from_utf8_lossy(&self.bytes).into_owned();
        self.bytes.clear();
        if text.ends_with('\r') {
            text.pop();
        }
        if std::mem::take(&mut self.truncated) {
            text.push_str(" …[truncated]");
        }
        text
    }
}

impl LineOut {
    /// Emits one line: the daemon's log, the stderr tail, and the sink (waiting while it is
    /// full) or else the event stream.
    async fn line(&self, text: String) {
        let pid = self.pid;
        match self.stream {
            Stream::Stdout => tracing::info!(target: "offload::job", pid, "{text}"),
            Stream::Stderr => tracing::warn!(target: "offload::job", pid, "{text}"),
        }
        if let Some(tail) = &self.tail {
            let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
            if t.len() == STDERR_TAIL_LINES {
                t.pop_front();
            }
            t.push_back(text.clone());
        }
        match &self.sink {
            // A sink whose reader is gone takes nothing more (the daemon's log still has it).
            Some(sink) => {
                let _ = sink
                    .send(OutputItem::Line {
                        pid,
                        stream: self.stream,
                        line: text,
                    })
                    .await;
            }
            None => {
                let credit = match &self.flow {
                    Some(flow) => loop {
                        if let Some(c) = flow.take() {
                            break c;
                        }
                        flow.room().await;
                    },
                    None => Credit::default(),
                };
                self.emitter.emit(ProcessEvent::Log {
                    pid,
                    stream: self.stream,
                    line: text,
                    credit,
                });
            }
        }
    }

    /// Splits `bytes` into lines (the last unterminated piece stays in `partial`).
    async fn feed(&self, partial: &mut Partial, mut bytes: &[u8]) {
        while let Some(i) = bytes.iter().position(|&b| b == b'\n') {
            partial.push(&bytes[..i]);
            self.line(partial.take()).await;
            bytes = &bytes[i + 1..];
        }
        partial.push(bytes);
    }
}

/// What woke a pump.
enum Wake {
    Read(std::io::Result<usize>),
    Drain(Option<DrainRequest>),
}

/// Reads `out` line by line into log events (and the stderr tail), each line cut at
/// [`MAX_LOG_LINE`]; memory stays bounded however much the job writes. Answers each drain
/// request once what the pipe held when it came is emitted.
pub(super) async fn pump_lines<R: AsyncRead + AsFd + Unpin>(
    mut out: R,
    to: LineOut,
    mut drains: mpsc::UnboundedReceiver<DrainRequest>,
) {
    let mut chunk = vec![0u8; CHUNK];
    let mut partial = Partial::default();
    let mut drains_open = true;
    loop {
        // `read` is cancel safe: when a drain request wins, nothing was read.
        let wake = tokio::select! {
            n = out.read(&mut chunk) => Wake::Read(n),
            req = drains.recv(), if drains_open => Wake::Drain(req),
        };
        match wake {
            Wake::Read(Ok(0) | Err(_)) => break,
            Wake::Read(Ok(n)) => to.feed(&mut partial, &chunk[..n]).await,
            Wake::Drain(Some(done)) => {
                let open = drain_now(out.as_fd(), &mut chunk, &to, &mut partial).await;
                let _ = done.send(());
                if !open {
                    break;
                }
            }
            Wake::Drain(None) => drains_open = false,
        }
    }
    if !partial.is_empty() {
        to.line(partial.take()).await;
    }
    // Requests that came after the end: everything was read.
    drains.close();
    while let Some(done) = drains.recv().await {
        let _ = done.send(());
    }
}

/// Reads what the pipe holds now with non-blocking reads until it is empty (tokio's readiness
/// is not consulted: data written just before may not have been reported by the reactor yet),
/// emits its lines and the unterminated rest as a line of its own. `false` at end of file.
async fn drain_now(
    fd: BorrowedFd<'_>,
    chunk: &mut [u8],
    to: &LineOut,
    partial: &mut Partial,
) -> bool {
    let open = loop {
        match crate::sys::read_fd(fd, chunk) {
            Ok(0) => break false,
            Ok(n) => to.feed(partial, &chunk[..n]).await,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // Empty (EAGAIN), or an error the pump's next read reports.
            Err(_) => break true,
        }
    };
    if !partial.is_empty() {
        to.line(partial.take()).await;
    }
    open
}

/// Collects a command-mode program's stdout, at most `max` bytes (the rest is read and dropped).
pub(super) async fn collect_output<R: AsyncRead + Unpin>(mut out: R, max: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match out.read(&mut chunk).await {
            Ok(0) | Err(_) => return buf,
            Ok(n) => {
                let room = max.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}

/// Asks every pump to drain its pipe and waits until each has (a pump that ended counts as
/// drained: it read up to end of file).
pub(super) async fn drain(pumps: &[mpsc::UnboundedSender<DrainRequest>]) {
    let mut answers = Vec::with_capacity(pumps.len());
    for p in pumps {
        let (tx, rx) = oneshot::channel();
        if p.send(tx).is_ok() {
            answers.push(rx);
        }
    }
    for a in answers {
        let _ = a.await;
    }
}
