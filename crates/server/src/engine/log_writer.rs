//! The log writer (one task): owns every running attempt's log bounds and stores captured
//! lines in batches (`Store::append_logs`), never one transaction per line.
//!
//! Senders (a process job's forwarder, a pool's sink reader in `logs.rs`) send [`LogMsg`]s
//! over a bounded channel: they wait while it is full, and so do the jobs' output pumps behind
//! them (backpressure down to the job's own `write`). An attempt's log is opened before it
//! starts and closed after it ended: lines of an attempt that is not open are dropped. Each
//! attempt keeps at most `max_bytes` of text (a line counts its bytes plus its newline);
//! later lines are counted, not kept, and the close appends one marker line saying how many
//! lines and bytes were dropped. A batch is stored when 1,000 lines or 1 MiB are pending,
//! 100 ms after its first line, or at once when an attempt closes (the close is answered once
//! its lines are stored, so a job's logs are complete when its end is recorded).
//!
//! The writer never waits for the store while lines come in: one batch is stored at a time
//! (a task of its own) and the next gathers meanwhile. When the store is so slow that
//! [`MAX_PENDING_BYTES`] or [`MAX_PENDING_LINES`] gather, further lines are counted as lost
//! (the attempt's marker says how many) instead of stalling the senders: a stuck store never
//! stalls a pool. Memory: the channel, two batches at most, and a few counters per running
//! attempt.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use offload_store::logs::MAX_LOG_BATCH;
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
/// Bytes of text gathered at most while a batch is being stored (then lines are lost).
pub(super) const MAX_PENDING_BYTES: usize = 8 << 20;
/// Lines gathered at most while a batch is being stored (then lines are lost).
pub(super) const MAX_PENDING_LINES: usize = 50_000;

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
    /// Lines not kept because the store was behind.
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
    /// When the batch's first line came.
    since: Option<Instant>,
    /// The batch being stored.
    in_flight: Option<tokio::task::JoinHandle<()>>,
}

/// The writer's loop; ends when every sender is gone (after storing what it holds).
pub(super) async fn run(store: Arc<dyn Store>, max_bytes: usize, mut rx: mpsc::Receiver<LogMsg>) {
    let mut w = Writer {
        store,
        max_bytes,
        open: HashMap::new(),
        batch: Vec::new(),
        batch_bytes: 0,
        closed: Vec::new(),
        since: None,
        in_flight: None,
    };
    let mut senders = true;
    while senders || w.in_flight.is_some() || !w.idle() {
        let linger = w.since.map(|t| t + LINGER);
        tokio::select! {
            m = rx.recv(), if senders => match m {
                Some(m) => w.handle(m),
                None => senders = false,
            },
            _ = wait_stored(&mut w.in_flight) => w.in_flight = None,
            () = sleep_until_opt(linger), if w.in_flight.is_none() => w.since = None,
        }
        // Store when nothing is being stored and the batch is due: full, a close waits, its
        // first line lingered long enough, or the senders are gone.
        let due = w.full() || !w.closed.is_empty() || w.since.is_none() || !senders;
        if w.in_flight.is_none() && !w.idle() && due {
            w.flush();
        }
    }
}

/// Waits until the batch being stored is (never, when none is).
async fn wait_stored(in_flight: &mut Option<tokio::task::JoinHandle<()>>) {
    match in_flight {
        Some(h) => {
            let _ = h.await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Writer {
    fn full(&self) -> bool {
        self.batch.len() >= BATCH_LINES || self.batch_bytes >= BATCH_BYTES
    }

    fn idle(&self) -> bool {
        self.batch.is_empty() && self.closed.is_empty()
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
                if self.batch.len() >= MAX_PENDING_LINES || self.batch_bytes >= MAX_PENDING_BYTES {
                    // The store is behind: counted, not kept (and not cut: later lines of
                    // the attempt may still fit once the store caught up).
                    o.lost += 1;
                    return;
                }
                o.bytes += size;
                let seq = o.next_seq;
                if self.batch.is_empty() {
                    self.since = Some(Instant::now());
                }
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

    /// Starts storing the batch (calls of at most `MAX_LOG_BATCH` lines, on a task of its own; a failure is logged and the
    /// lines are lost: logs never hold up a job's end), then answers the closes. The writer
    /// goes on taking lines meanwhile; at most one batch is in flight, so batches are stored
    /// in order.
    fn flush(&mut self) {
        let lines = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        self.since = None;
        let closed = std::mem::take(&mut self.closed);
        let store = Arc::clone(&self.store);
        self.in_flight = Some(tokio::spawn(async move {
            // A backlog gathered while the store was behind is larger than one call takes.
            let mut lines = lines;
            while !lines.is_empty() {
                let rest = lines.split_off(lines.len().min(MAX_LOG_BATCH));
                let n = lines.len();
                if let Err(e) = store.append_logs(lines).await {
                    tracing::warn!(error = %e, lines = n, "cannot store job log lines");
                }
                lines = rest;
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
            "{} line(s) lost: the log store was behind (over {MAX_PENDING_LINES} lines or {} MiB waiting)",
            o.lost,
            MAX_PENDING_BYTES >> 20
        ));
    }
    format!("[offload: {}]", parts.join("; "))
}

#[cfg(test)]
#[path = "log_writer_tests.rs"]
mod tests;
