//! The log writer (one task): owns every running attempt's log bounds and stores captured
//! lines in batches (`Store::append_logs`), never one transaction per line.
//!
//! Senders (a process job's forwarder, a pool worker's tap in `logs.rs`) send [`LogMsg`]s over
//! a bounded channel. An attempt's log is opened before it starts and closed after it ended:
//! lines of an attempt that is not open are dropped. Each attempt keeps at most `max_bytes` of
//! text (a line counts its bytes plus its newline); later lines are counted, not kept, and
//! the close appends one marker line saying how many lines and bytes were dropped (and how
//! many output events were lost when a job printed faster than the daemon read). A batch is
//! stored when 1,000 lines or 1 MiB are pending, 100 ms after its first line, or at once when
//! an attempt closes (the close is answered once its lines are stored, so a job's logs are
//! complete when its end is recorded). Memory: the channel, one batch, and a few counters per
//! running attempt.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use offload_store::{now_ms, JobId, LogLine, LogStream, Millis, Store};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// An attempt: the job and its attempt number.
pub(crate) type AttemptKey = (JobId, u32);

/// Messages queued for the writer at most.
pub(super) const CHANNEL: usize = 4_096;
/// Lines in one batch at most.
const BATCH_LINES: usize = 1_000;
/// Bytes of text in one batch at most (then it is stored).
const BATCH_BYTES: usize = 1 << 20;
/// How long the first line of a batch waits for others.
const LINGER: Duration = Duration::from_millis(100);

/// What the writer is told.
pub(super) enum LogMsg {
    /// An attempt starts: its lines are kept from now on.
    Open(AttemptKey),
    /// A line of an open attempt.
    Line {
        key: AttemptKey,
        stream: LogStream,
        at: Millis,
        text: String,
        shared: bool,
    },
    /// `n` events of the attempt's output were lost before the daemon read them.
    Lost(AttemptKey, u64),
    /// The attempt ended: store its marker (if it was cut) and its lines, then answer.
    Close(AttemptKey, oneshot::Sender<()>),
}

/// One open attempt's counters.
#[derive(Default)]
struct Open {
    next_seq: u32,
    bytes: usize,
    dropped_lines: u64,
    dropped_bytes: u64,
    lost: u64,
}

/// The writer's state: the open attempts and the pending batch.
struct Writer {
    store: Arc<dyn Store>,
    max_bytes: usize,
    open: HashMap<AttemptKey, Open>,
    batch: Vec<LogLine>,
    batch_bytes: usize,
    closed: Vec<oneshot::Sender<()>>,
    /// The batch being stored.
    in_flight: Option<tokio::task::JoinHandle<()>>,
}

/// The writer's loop; ends when every sender is gone.
pub(super) async fn run(store: Arc<dyn Store>, max_bytes: usize, mut rx: mpsc::Receiver<LogMsg>) {
    let mut w = Writer {
        store,
        max_bytes,
        open: HashMap::new(),
        batch: Vec::new(),
        batch_bytes: 0,
        closed: Vec::new(),
        in_flight: None,
    };
    while let Some(first) = rx.recv().await {
        w.handle(first);
        let deadline = Instant::now() + LINGER;
        loop {
            if w.full() {
                break;
            }
            let next = if w.closed.is_empty() && !w.batch.is_empty() {
                // Wait a little for more lines of the batch.
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(m) => m,
                    Err(_) => break,
                }
            } else {
                // Something waits for the store (or nothing is pending): take what is queued.
                match rx.try_recv() {
                    Ok(m) => Some(m),
                    Err(_) => break,
                }
            };
            match next {
                Some(m) => w.handle(m),
                None => break,
            }
        }
        w.flush().await;
    }
    w.flush().await;
    if let Some(last) = w.in_flight.take() {
        let _ = last.await;
    }
}

impl Writer {
    fn full(&self) -> bool {
        self.batch.len() >= BATCH_LINES || self.batch_bytes >= BATCH_BYTES
    }

    fn handle(&mut self, m: LogMsg) {
        match m {
            LogMsg::Open(key) => {
                self.open.entry(key).or_default();
            }
            LogMsg::Line {
                key,
                stream,
                at,
                text,
                shared,
            } => {
                let Some(o) = self.open.get_mut(&key) else {
                    tracing::debug!(id = %key.0, attempt = key.1, "a log line after its attempt's end");
                    return;
                };
                let size = text.len() + 1;
                if o.dropped_lines > 0 || o.bytes + size > self.max_bytes {
                    o.dropped_lines += 1;
                    o.dropped_bytes += size as u64;
                    return;
                }
                o.bytes += size;
                let seq = o.next_seq;
                o.next_seq += 1;
                self.batch_bytes += size;
                self.batch.push(LogLine {
                    job_id: key.0,
                    attempt: key.1,
                    seq,
                    stream,
                    at,
                    line: text,
                    shared,
                    marker: false,
                });
            }
            LogMsg::Lost(key, n) => {
                if let Some(o) = self.open.get_mut(&key) {
                    o.lost += n;
                }
            }
            LogMsg::Close(key, done) => {
                if let Some(o) = self.open.remove(&key) {
                    if o.dropped_lines > 0 || o.lost > 0 {
                        let text = marker_text(&o, self.max_bytes);
                        self.batch_bytes += text.len();
                        self.batch.push(LogLine {
                            job_id: key.0,
                            attempt: key.1,
                            seq: o.next_seq,
                            stream: LogStream::Stderr,
                            at: now_ms(),
                            line: text,
                            shared: false,
                            marker: true,
                        });
                    }
                }
                self.closed.push(done);
            }
        }
    }

    /// Stores the batch (one call; a failure is logged and the lines are lost: logs never
    /// hold up a job's end), then answers the closes. The store call runs as a task of its
    /// own, so that the writer goes on taking lines meanwhile (senders do not stall behind
    /// the store); at most one is in flight, and batches are stored in order.
    async fn flush(&mut self) {
        if let Some(previous) = self.in_flight.take() {
            let _ = previous.await;
        }
        if self.batch.is_empty() && self.closed.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let closed = std::mem::take(&mut self.closed);
        let store = Arc::clone(&self.store);
        self.in_flight = Some(tokio::spawn(async move {
            let n = lines.len();
            if n > 0 {
                if let Err(e) = store.append_logs(lines).await {
                    tracing::warn!(error = %e, lines = n, "cannot store job log lines");
                }
            }
            for done in closed {
                let _ = done.send(());
            }
        }));
    }
}

/// The marker line of an attempt cut at `max` bytes, or that lost output.
fn marker_text(o: &Open, max: usize) -> String {
    let mut parts = Vec::new();
    if o.dropped_lines > 0 {
        parts.push(format!(
            "log cut: {} more line(s), {} byte(s) dropped over max_log_bytes_per_attempt = {max}",
            o.dropped_lines, o.dropped_bytes
        ));
    }
    if o.lost > 0 {
        parts.push(format!(
            "{} output event(s) lost: the job printed faster than the daemon read",
            o.lost
        ));
    }
    format!("[offload: {}]", parts.join("; "))
}
