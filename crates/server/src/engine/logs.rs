//! [`JobLogs`]: where a job's stdout/stderr lines go — captured per attempt and stored by the
//! log writer (`log_writer.rs`). Why no line is lost or given to the wrong attempt:
//! `docs/design/job-logs.md`.
//!
//! - A fresh process (`isolation = "process"`): every line it prints is its attempt's; the
//!   job's forwarder (`progress.rs`) reads them from the attempt's own log sink until the
//!   process's pipes close.
//! - A pool worker runs several jobs over time, maybe at once. Every worker of a pool sends
//!   its lines to the pool's log sink ([`pool_sink`](JobLogs::pool_sink)), read by one task
//!   that gives each line to the attempts its worker runs at that moment: one attempt gets it
//!   as its own; several each get it marked `shared` (the daemon cannot tell which of them
//!   printed it); none — a line between jobs, or the worker's start-up output — is nobody's
//!   (it still reaches the daemon's log). The job's forwarder
//!   [`attach`](JobLogs::attach)es the attempt to the worker when the pool says it started
//!   there. When the job's answer has been reported, the attempt puts a [`barrier`] in the
//!   pool's sink and lets go of the worker ([`detach_all`](JobLogs::detach_all)) only once the
//!   reader passed it: the supervisor drained the worker's pipes into the sink before it
//!   reported the answer, and the SDKs flush stdout and stderr before they send it, so every
//!   line the job printed before returning is read while the attempt is still attached.
//!
//! Backpressure: the sinks are bounded and the output pumps wait on them, so a job printing
//! faster than the daemon stores blocks on its own stdout; the writer never waits for the
//! store (when the store is behind it keeps a bounded backlog, then counts lines as lost), so
//! a stuck store never stalls a pool.
//!
//! The attached attempts are one `Mutex<HashMap>` (pid → attempts), touched when an attempt
//! starts and ends and once per line, never held across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use offload_process::{OutputItem, Stream};
use offload_store::{now_ms, LogStream, Store};
use tokio::sync::{mpsc, oneshot};

use super::log_writer::{self, AttemptKey, LogMsg};

/// Lines queued in a log sink (a pool's, or a fresh process's) before its pumps wait.
pub(crate) const SINK_CAPACITY: usize = 1_024;

/// The engine's log capture: a handle to the log writer and the pool workers' attempts.
#[derive(Clone)]
pub(crate) struct JobLogs {
    tx: mpsc::Sender<LogMsg>,
    /// Pid → the attempts running on that pool worker.
    attached: Arc<Mutex<HashMap<u32, Vec<AttemptKey>>>>,
}

impl JobLogs {
    /// Starts the log writer: at most `max_bytes` of each attempt's lines are kept.
    pub(crate) fn start(store: Arc<dyn Store>, max_bytes: usize) -> Self {
        let (tx, rx) = mpsc::channel(log_writer::CHANNEL);
        tokio::spawn(log_writer::run(store, max_bytes, rx));
        Self {
            tx,
            attached: Arc::default(),
        }
    }

    /// An attempt starts: its lines are kept from now on.
    pub(crate) async fn open(&self, key: AttemptKey) {
        let _ = self.tx.send(LogMsg::Open(key)).await;
    }

    /// A line of attempt `key` (waits while the writer's queue is full: the caller's stream
    /// slows down, memory does not grow).
    pub(crate) async fn line(&self, key: AttemptKey, stream: Stream, text: String, shared: bool) {
        let stream = match stream {
            Stream::Stdout => LogStream::Stdout,
            Stream::Stderr => LogStream::Stderr,
        };
        let _ = self
            .tx
            .send(LogMsg::Line {
                key,
                stream,
                at: now_ms(),
                text,
                shared,
            })
            .await;
    }

    /// The attempt ended: returns once its lines (and its cut marker) are stored.
    pub(crate) async fn close(&self, key: AttemptKey) {
        let (done, stored) = oneshot::channel();
        if self.tx.send(LogMsg::Close(key, done)).await.is_ok() {
            let _ = stored.await;
        }
    }

    /// A log sink for a pool's workers, and the task reading it (until every worker and the
    /// pool let go of the sink).
    pub(crate) fn pool_sink(&self) -> mpsc::Sender<OutputItem> {
        let (tx, rx) = mpsc::channel(SINK_CAPACITY);
        tokio::spawn(read_pool_sink(rx, self.clone()));
        tx
    }

    /// Attempt `key` started on pool worker `pid`: its lines go to the attempt until
    /// [`detach_all`](Self::detach_all). A worker runs at most `concurrency` jobs at once:
    /// when one more is attached, the oldest have ended (their answers came before the pool
    /// gave the worker this one) and lose the worker.
    pub(crate) fn attach(&self, pid: u32, key: AttemptKey, concurrency: usize) {
        let mut w = self.attached.lock().unwrap_or_else(|e| e.into_inner());
        let keys = w.entry(pid).or_default();
        keys.push(key);
        let over = keys.len().saturating_sub(concurrency.max(1));
        keys.drain(..over);
    }

    /// Attempt `key` ended: no worker's lines go to it any more.
    pub(crate) fn detach_all(&self, key: AttemptKey) {
        let mut w = self.attached.lock().unwrap_or_else(|e| e.into_inner());
        w.retain(|_, keys| {
            keys.retain(|k| *k != key);
            !keys.is_empty()
        });
    }

    /// The attempts worker `pid` runs now (a line of it was just read).
    fn attached(&self, pid: u32) -> Vec<AttemptKey> {
        self.attached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&pid)
            .cloned()
            .unwrap_or_default()
    }
}

/// Waits until the reader of `sink` handled everything sent to it before this call (at once
/// when the reader is gone).
pub(crate) async fn barrier(sink: &mpsc::Sender<OutputItem>) {
    let (tx, passed) = oneshot::channel();
    if sink.send(OutputItem::Barrier(tx)).await.is_ok() {
        let _ = passed.await;
    }
}

/// A pool's log sink: gives each line to the attempts its worker runs when it is read, and
/// answers barriers.
async fn read_pool_sink(mut rx: mpsc::Receiver<OutputItem>, logs: JobLogs) {
    while let Some(item) = rx.recv().await {
        match item {
            OutputItem::Line { pid, stream, line } => {
                let keys = logs.attached(pid);
                if keys.is_empty() {
                    tracing::debug!(pid, "a pool worker's line outside any job");
                }
                let shared = keys.len() > 1;
                if let Some((last, others)) = keys.split_last() {
                    for key in others {
                        logs.line(*key, stream, line.clone(), shared).await;
                    }
                    logs.line(*last, stream, line, shared).await;
                }
            }
            OutputItem::Barrier(passed) => {
                let _ = passed.send(());
            }
            _ => {}
        }
    }
}
