//! The writer: one thread owns the write connection and group-commits every write.
//!
//! A call is sent as a [`Request`] through a channel. The thread takes the first pending request,
//! drains whatever else is pending (up to `max_batch`), runs them all inside ONE
//! `BEGIN IMMEDIATE … COMMIT`, and only after the commit answers each caller. While one batch
//! commits (the fsync), the next one queues up: the busier the store, the bigger the batch.
//!
//! Each call must stay atomic on its own: a call that fails must leave no trace, and must not
//! fail the others. Savepoints around every call would do it, but they make SQLite copy every
//! page a call touches into a statement journal, which costs more than the work itself at
//! batch sizes of hundreds. So the batch runs optimistically without them; in the rare batch
//! where a call fails, the whole transaction is rolled back and the batch runs again with one
//! savepoint per call (requests are `FnMut` for that: a rerun computes afresh, nothing of the
//! first run was seen by anyone).
//!
//! Some calls need no `fsync` of their own ([`Writer::call_lazy`]: claims, lease renewals,
//! progress). A crash of the daemon loses none of them (the commit is in the OS's page cache);
//! a crash of the machine may, and that only means a job is claimed again or its progress is
//! older, which recovery after such a crash does anyway. They are answered as soon as they are
//! committed. Every commit is made with `PRAGMA synchronous = NORMAL` (in WAL mode: appended to
//! the WAL, not flushed); a file store's durable calls are then handed to the flusher thread
//! (`flusher.rs`), which flushes the WAL and answers them, while this thread goes on with the
//! lazy calls: a claim never waits behind a flush. The next group of durable calls waits here
//! until that flush is done (and grows meanwhile), so there is one flush per group as before.
//! The WAL is one file written in order: each flush makes every commit before it durable, so a
//! job's completion is never on disk without the claim that preceded it.
//!
//! A commit is visible to readers before its flush (by up to one flush): a reader may see a
//! submitted job, or an end, that a crash of the machine in that moment would undo. Nothing
//! that was answered is undone; a job that ran while its submit was being flushed runs again
//! after such a crash only if its submit survived (at least once, as after any crash).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::counts::Deltas;
use super::flusher::Flusher;
use crate::StoreError;

/// A write call's work: runs inside the batch's transaction, notes its state changes in the
/// [`Deltas`]. May run twice (see the module docs).
pub(crate) trait Work<T>:
    FnMut(&Connection, &mut Deltas) -> Result<T, StoreError> + Send
{
}
impl<T, F: FnMut(&Connection, &mut Deltas) -> Result<T, StoreError> + Send> Work<T> for F {}

/// What the writer runs after every call, in the call's transaction (and savepoint): the
/// store's follow-up of changes its triggers leave to finish (`ops::after::release_cascade`).
pub(crate) type AfterCall = fn(&Connection) -> Result<(), StoreError>;

/// One call waiting for the writer.
pub(super) trait Request: Send {
    /// Runs the call (and its [`AfterCall`]); `false` if it failed.
    fn run(&mut self, conn: &Connection, deltas: &mut Deltas) -> bool;
    /// How much work it brings (jobs, completions…), to bound a batch.
    fn weight(&self) -> usize;
    /// Answers the caller once the batch's fate is known.
    fn reply(self: Box<Self>, commit: Result<(), String>);
}

struct Call<F, T> {
    f: F,
    /// `None` for a call that ends and deletes no job.
    after: Option<AfterCall>,
    weight: usize,
    result: Option<Result<T, StoreError>>,
    tx: oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> Request for Call<F, T>
where
    F: Work<T>,
    T: Send,
{
    fn run(&mut self, conn: &Connection, deltas: &mut Deltas) -> bool {
        // A bug that panics fails its call, not the writer (and with it every later call).
        let (f, after) = (&mut self.f, self.after);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let value = f(conn, deltas)?;
            if let Some(after) = after {
                after(conn)?;
            }
            Ok(value)
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, "a store call panicked");
            Err(StoreError::Engine(format!(
                "the store call panicked: {what}"
            )))
        });
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn weight(&self) -> usize {
        self.weight
    }

    fn reply(self: Box<Self>, commit: Result<(), String>) {
        let answer = match (commit, self.result) {
            // A call that failed on its own keeps its own error.
            (_, Some(Err(e))) => Err(e),
            (Err(e), _) => Err(StoreError::Engine(e)),
            (Ok(()), Some(Ok(v))) => Ok(v),
            (Ok(()), None) => Err(StoreError::Engine("the write was not run".into())),
        };
        // The caller may have gone (a cancelled future): nothing to do.
        let _ = self.tx.send(answer);
    }
}

/// The handle to the writer thread. Dropping it lets the thread finish the queued writes, close
/// the connection (which checkpoints the WAL) and exit; `Drop` waits for that.
pub(crate) struct Writer {
    inbox: Arc<Inbox>,
    after: AfterCall,
    thread: Option<JoinHandle<()>>,
    flushes: Arc<AtomicU64>,
    queued: Arc<tokio::sync::Notify>,
}

/// The calls waiting for the writer, lazy and durable apart.
#[derive(Default)]
struct Inbox {
    queued: Mutex<Queued>,
    wake: Condvar,
}

#[derive(Default)]
struct Queued {
    lazy: VecDeque<Box<dyn Request>>,
    durable: VecDeque<Box<dyn Request>>,
    /// A group of durable calls is being flushed: the next one waits (and grows).
    flushing: bool,
    /// The handle was dropped: finish what is queued, then stop.
    closed: bool,
}

impl Inbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queued> {
        self.queued.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn flushed(&self) {
        self.lock().flushing = false;
        self.wake.notify_one();
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the writer thread on `conn`. `wal`: the WAL file of a store whose durable calls
    /// must be flushed to disk before they are answered (`PRAGMA synchronous = FULL`, the
    /// store's default); `None` when a commit is as durable as it gets (`NORMAL`, or in
    /// memory). `after` runs after every call, in its transaction.
    pub(crate) fn spawn(
        conn: Connection,
        max_batch: usize,
        wal: Option<PathBuf>,
        after: AfterCall,
    ) -> Result<Self, StoreError> {
        conn.execute_batch("PRAGMA synchronous = NORMAL")
            .map_err(super::engine)?;
        let inbox = Arc::new(Inbox::default());
        let flusher = match wal {
            Some(wal) => {
                let inbox = Arc::clone(&inbox);
                Some(Flusher::spawn(
                    wal,
                    |r: Box<dyn Request>, commit| r.reply(commit),
                    move || inbox.flushed(),
                )?)
            }
            None => None,
        };
        let flushes = flusher
            .as_ref()
            .map_or_else(|| Arc::new(AtomicU64::new(0)), |f| Arc::clone(&f.flushes));
        let queued = Arc::new(tokio::sync::Notify::new());
        let thread = {
            let inbox = Arc::clone(&inbox);
            let queued = Arc::clone(&queued);
            std::thread::Builder::new()
                .name("offload-store-writer".into())
                .spawn(move || run(conn, &inbox, max_batch.max(1), flusher, &queued))
                .map_err(|e| StoreError::Engine(format!("cannot start the store's writer: {e}")))?
        };
        Ok(Self {
            inbox,
            after,
            thread: Some(thread),
            flushes,
            queued,
        })
    }

    /// Woken after every commit that made jobs `queued`, before its flush (see
    /// [`Store::queued_signal`](crate::Store::queued_signal)).
    pub(crate) fn queued_signal(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.queued)
    }

    /// How many times the WAL was flushed so far (0 for a store that does not flush).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// Runs `f` in the next group commit; returns its result once that commit is durable.
    /// `weight` is how many items (jobs, completions…) it handles, at least 1.
    pub(crate) async fn call<T, F>(&self, weight: usize, f: F) -> Result<T, StoreError>
    where
        F: Work<T> + 'static,
        T: Send + 'static,
    {
        self.send(weight, true, Some(self.after), f).await
    }

    /// Like [`call`](Self::call), but answers once the commit is visible to every reader,
    /// before it is flushed to disk (see the module docs): for writes that a crash may lose.
    pub(crate) async fn call_lazy<T, F>(&self, weight: usize, f: F) -> Result<T, StoreError>
    where
        F: Work<T> + 'static,
        T: Send + 'static,
    {
        self.send(weight, false, Some(self.after), f).await
    }

    /// Like [`call`](Self::call), for a call that ends and deletes no job (a submit): the
    /// store's follow-up ([`AfterCall`]) has nothing to finish after it and is not run.
    pub(crate) async fn call_ending_none<T, F>(&self, weight: usize, f: F) -> Result<T, StoreError>
    where
        F: Work<T> + 'static,
        T: Send + 'static,
    {
        self.send(weight, true, None, f).await
    }

    /// [`call_lazy`](Self::call_lazy) for a call that ends and deletes no job (a claim), as
    /// [`call_ending_none`](Self::call_ending_none).
    pub(crate) async fn call_lazy_ending_none<T, F>(
        &self,
        weight: usize,
        f: F,
    ) -> Result<T, StoreError>
    where
        F: Work<T> + 'static,
        T: Send + 'static,
    {
        self.send(weight, false, None, f).await
    }

    async fn send<T, F>(
        &self,
        weight: usize,
        durable: bool,
        after: Option<AfterCall>,
        f: F,
    ) -> Result<T, StoreError>
    where
        F: Work<T> + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let request = Box::new(Call {
            f,
            after,
            weight: weight.max(1),
            result: None,
            tx,
        });
        {
            let mut q = self.inbox.lock();
            if q.closed {
                return Err(stopped());
            }
            if durable {
                q.durable.push_back(request);
            } else {
                q.lazy.push_back(request);
            }
        }
        self.inbox.wake.notify_one();
        rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Engine("the store's writer thread has stopped".into())
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.inbox.lock().closed = true;
        self.inbox.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the store's writer thread panicked");
            }
        }
    }
}

/// A batch stops taking calls once they bring this many items: a transaction of a million
/// jobs would hold every other caller for seconds.
const MAX_WEIGHT: usize = 20_000;

fn run(
    mut conn: Connection,
    inbox: &Inbox,
    max_batch: usize,
    flusher: Option<Flusher<Box<dyn Request>>>,
    queued: &tokio::sync::Notify,
) {
    while let Some((mut lazy, mut durable)) = next_calls(inbox, max_batch) {
        // The lazy calls first, in a commit of their own, answered at once.
        if !lazy.is_empty() {
            let commit = commit_group(&mut conn, &mut lazy, queued);
            reply_all(&mut lazy, &commit);
        }
        if durable.is_empty() {
            continue;
        }
        let commit = commit_group(&mut conn, &mut durable, queued);
        match (&flusher, commit) {
            (Some(f), Ok(())) => {
                if let Err(mut group) = f.send(durable) {
                    // Never answered without the flush they were promised.
                    reply_all(&mut group, &Err("the store's flusher has stopped".into()));
                    inbox.flushed();
                }
            }
            (_, commit) => {
                reply_all(&mut durable, &commit);
                inbox.flushed();
            }
        }
    }
    // Dropping the flusher (after the loop) waits for its last group.
    drop(flusher);
}

/// The next calls to run: every lazy call queued, and the durable ones unless a flush is under
/// way (each list bounded by `max_batch` calls and [`MAX_WEIGHT`]). `None` once the handle is
/// dropped and nothing is left.
#[allow(clippy::type_complexity)]
fn next_calls(
    inbox: &Inbox,
    max_batch: usize,
) -> Option<(Vec<Box<dyn Request>>, Vec<Box<dyn Request>>)> {
    let mut q = inbox.lock();
    loop {
        let durable_ready = !q.durable.is_empty() && !q.flushing;
        if !q.lazy.is_empty() || durable_ready {
            break;
        }
        if q.closed && q.lazy.is_empty() && q.durable.is_empty() && !q.flushing {
            return None;
        }
        q = inbox.wake.wait(q).unwrap_or_else(|e| e.into_inner());
    }
    let take = |from: &mut VecDeque<Box<dyn Request>>| {
        let mut out = Vec::new();
        let mut weight = 0;
        while out.len() < max_batch && weight < MAX_WEIGHT {
            match from.pop_front() {
                Some(r) => {
                    weight += r.weight();
                    out.push(r);
                }
                None => break,
            }
        }
        out
    };
    let lazy = take(&mut q.lazy);
    let durable = if q.flushing {
        Vec::new()
    } else {
        take(&mut q.durable)
    };
    if !durable.is_empty() {
        q.flushing = true;
    }
    Some((lazy, durable))
}

/// Commits `batch` in one transaction (again call by call if one failed); wakes `queued` if
/// the commit made jobs `queued`.
fn commit_group(
    conn: &mut Connection,
    batch: &mut [Box<dyn Request>],
    queued: &tokio::sync::Notify,
) -> Result<(), String> {
    let commit = match run_optimistic(conn, batch) {
        Attempt::Committed(grew) => Ok(grew),
        Attempt::Failed(e) => Err(e),
        Attempt::CallFailed => run_isolated(conn, batch),
    };
    match commit {
        Ok(grew) => {
            if grew {
                queued.notify_one();
            }
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, calls = batch.len(), "store group commit failed");
            Err(e)
        }
    }
}

/// Answers every call of `batch`.
fn reply_all(batch: &mut Vec<Box<dyn Request>>, commit: &Result<(), String>) {
    for request in batch.drain(..) {
        request.reply(commit.clone());
    }
}

enum Attempt {
    /// Committed; whether it made jobs `queued`.
    Committed(bool),
    /// The transaction failed as a whole (BEGIN or COMMIT): every call fails with this.
    Failed(String),
    /// A call failed: the transaction was rolled back, run the batch again call by call.
    CallFailed,
}

/// Runs the batch in one transaction without savepoints.
fn run_optimistic(conn: &mut Connection, batch: &mut [Box<dyn Request>]) -> Attempt {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return Attempt::Failed(e.to_string()),
    };
    let mut deltas = Deltas::default();
    for request in batch.iter_mut() {
        if !request.run(&tx, &mut deltas) {
            // Dropping the transaction rolls it back.
            return Attempt::CallFailed;
        }
    }
    if let Err(e) = deltas.flush(&tx) {
        return Attempt::Failed(e.to_string());
    }
    match tx.commit() {
        Ok(()) => Attempt::Committed(deltas.queued_grew()),
        Err(e) => Attempt::Failed(e.to_string()),
    }
}

/// Runs the batch in one transaction, each call in its own savepoint: a failing call rolls back
/// alone. `Err` when the transaction as a whole did not commit; else whether it made jobs
/// `queued`.
fn run_isolated(conn: &mut Connection, batch: &mut [Box<dyn Request>]) -> Result<bool, String> {
    let mut tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    let mut deltas = Deltas::default();
    for request in batch.iter_mut() {
        let sp = tx.savepoint().map_err(|e| e.to_string())?;
        let mut mine = Deltas::default();
        if request.run(&sp, &mut mine) {
            sp.commit().map_err(|e| e.to_string())?;
            deltas.merge(&mine);
        } else {
            drop(sp);
            // Some errors (a full disk, an I/O error) make SQLite roll the whole transaction
            // back: the earlier calls of the batch are lost too, say so to all.
            if tx.is_autocommit() {
                return Err("the transaction was rolled back by the engine".into());
            }
        }
    }
    deltas.flush(&tx).map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())?;
    Ok(deltas.queued_grew())
}

#[cfg(test)]
mod tests;
