//! [`JobLogs`]: where a job's stdout/stderr lines go — captured per attempt and stored by the
//! log writer (`log_writer.rs`).
//!
//! - A fresh process (`isolation = "process"`): every line it prints is its attempt's; the
//!   job's forwarder (`progress.rs`) reads them from the process's events (all of them arrive
//!   before its exit event).
//! - A pool worker runs several jobs over time, maybe at once. The job's forwarder
//!   [`attach`](JobLogs::attach)es the attempt to the worker when the pool says it started
//!   there, and [`detach_all`](JobLogs::detach_all) takes it off when it ended. One tap task
//!   per worker (started when the pool reports the worker spawned) reads the worker's lines and gives each to the attempts attached at that
//!   moment: one attempt gets it as its own; several each get it marked `shared` (the daemon
//!   cannot tell which of them printed it); none — a line between jobs, or the worker's
//!   start-up output before its handshake — is nobody's (it still reaches the daemon's log).
//!   Lines are read a moment after they are written; when a pool job ends its attempt lets
//!   go of the worker at once (a job the pool starts on it takes its lines from then on).
//!   Known gap: stdout and the channel are separate pipes, so output still unread when the
//!   answer is handled (a burst written just before returning) is no job's.
//!
//! The attached attempts are one `Mutex<HashMap>` (pid → attempts), touched when an attempt
//! starts and ends and once per line, never held across an `.await`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use offload_pool::ChildPool;
use offload_process::{ProcessEvent, Stream};
use offload_store::{now_ms, LogStream, Store};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::log_writer::{self, AttemptKey, LogMsg};

/// The engine's log capture: a handle to the log writer and the pool workers' attempts.
#[derive(Clone)]
pub(crate) struct JobLogs {
    tx: mpsc::Sender<LogMsg>,
    workers: Arc<Mutex<Workers>>,
}

/// Pid → the attempts running on that worker, and the workers tapped already.
#[derive(Default)]
struct Workers {
    attached: HashMap<u32, Vec<AttemptKey>>,
    tapped: HashSet<u32>,
}

impl JobLogs {
    /// Starts the log writer: at most `max_bytes` of each attempt's lines are kept.
    pub(crate) fn start(store: Arc<dyn Store>, max_bytes: usize) -> Self {
        let (tx, rx) = mpsc::channel(log_writer::CHANNEL);
        tokio::spawn(log_writer::run(store, max_bytes, rx));
        Self {
            tx,
            workers: Arc::default(),
        }
    }

    /// An attempt starts: its lines are kept from now on.
    pub(crate) async fn open(&self, key: AttemptKey) {
        let _ = self.tx.send(LogMsg::Open(key)).await;
    }

    /// A line of attempt `key` (waits when the writer is behind: the caller's stream slows
    /// down, memory does not grow).
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

    /// `n` events of attempt `key`'s output were lost (the daemon fell behind): its log says
    /// so at its end.
    pub(crate) async fn lost(&self, key: AttemptKey, n: u64) {
        let _ = self.tx.send(LogMsg::Lost(key, n)).await;
    }

    /// The attempt ended: returns once its lines (and its cut marker) are stored.
    pub(crate) async fn close(&self, key: AttemptKey) {
        let (done, stored) = oneshot::channel();
        if self.tx.send(LogMsg::Close(key, done)).await.is_ok() {
            let _ = stored.await;
        }
    }

    /// Attempt `key` started on pool worker `pid`: its lines go to the attempt until
    /// [`detach_all`](Self::detach_all). Taps the worker if nothing does yet.
    /// A worker runs at most `concurrency` jobs at once: when one more is attached, the
    /// oldest have ended (their answers came before the pool gave the worker this one) and lose
    /// the worker.
    pub(crate) fn attach(
        &self,
        pid: u32,
        key: AttemptKey,
        concurrency: usize,
        pool: Option<&ChildPool>,
    ) {
        {
            let mut w = self.workers.lock().unwrap_or_else(|e| e.into_inner());
            let keys = w.attached.entry(pid).or_default();
            keys.push(key);
            let over = keys.len().saturating_sub(concurrency.max(1));
            keys.drain(..over);
        }
        self.tap(pid, pool);
    }

    /// Reads pool worker `pid`'s lines from now on (from its spawn when nobody read its
    /// events yet), unless something does already. The engine taps each worker when the pool
    /// says it spawned; an attempt that starts on a worker not tapped yet taps it.
    pub(crate) fn tap(&self, pid: u32, pool: Option<&ChildPool>) {
        // The handle first: a worker the pool does not list yet is tapped by its first job.
        let Some(process) = pool.and_then(|p| p.worker(pid)) else {
            return;
        };
        let new = self
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tapped
            .insert(pid);
        if new {
            tokio::spawn(tap_worker(pid, process.events(), self.clone()));
        }
    }

    /// Attempt `key` ended: no worker's lines go to it any more.
    pub(crate) fn detach_all(&self, key: AttemptKey) {
        let mut w = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        w.attached.retain(|_, keys| {
            keys.retain(|k| *k != key);
            !keys.is_empty()
        });
    }

    /// The attempts worker `pid` runs now (a line of it was just read).
    fn attached(&self, pid: u32) -> Vec<AttemptKey> {
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .attached
            .get(&pid)
            .cloned()
            .unwrap_or_default()
    }

    fn untap(&self, pid: u32) {
        let mut w = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        w.tapped.remove(&pid);
        w.attached.remove(&pid);
    }
}

/// A pool worker's tap: gives each line to the attempts the worker runs when it is read,
/// until the worker exits. `events` starts at the worker's spawn when nobody read them
/// before: output before its handshake is skipped.
async fn tap_worker(pid: u32, mut events: broadcast::Receiver<ProcessEvent>, logs: JobLogs) {
    let mut ready = false;
    let mut first = true;
    loop {
        let ev = match events.recv().await {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(pid, missed = n, "a pool worker's log tap fell behind");
                ready = true;
                for key in logs.attached(pid) {
                    logs.lost(key, n).await;
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        if std::mem::take(&mut first) && !matches!(ev, ProcessEvent::Spawned { .. }) {
            // A later subscription: the handshake happened before it.
            tracing::debug!(pid, "a pool worker's log tap starts after its spawn");
            ready = true;
        }
        match ev {
            ProcessEvent::Ready { .. } => ready = true,
            ProcessEvent::Log { stream, line, .. } if ready => {
                let keys = logs.attached(pid);
                if keys.is_empty() {
                    tracing::debug!(pid, "a pool worker's line outside any job");
                }
                let shared = keys.len() > 1;
                for key in keys {
                    logs.line(key, stream, line.clone(), shared).await;
                }
            }
            ProcessEvent::Log { .. } => {
                tracing::debug!(pid, "a pool worker's line before its handshake");
            }
            ProcessEvent::Exited { .. } => break,
            _ => {}
        }
    }
    logs.untap(pid);
}
