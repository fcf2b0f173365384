//! The writer: one thread owns the write connection and group-commits every write.
//!
//! A call is sent as a [`Request`] through a channel. The thread takes the first pending request,
//! drains whatever else is pending (up to `max_batch`), runs each in its own savepoint inside ONE
//! `BEGIN IMMEDIATE … COMMIT`, and only after the commit answers each caller. A request that fails
//! rolls back its savepoint alone; a failed commit fails every request of the batch. While one
//! batch commits (the fsync), the next one queues up: the busier the store, the bigger the batch.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::StoreError;

/// One write waiting for the writer.
trait Request: Send {
    /// Runs the request inside the batch's transaction; `false` if it failed (its savepoint is
    /// rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the batch's fate is known.
    fn reply(self: Box<Self>, commit: Result<(), String>);
}

struct Call<F, T> {
    f: Option<F>,
    result: Option<Result<T, StoreError>>,
    tx: oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> Request for Call<F, T>
where
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
    T: Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        let result = f(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn reply(self: Box<Self>, commit: Result<(), String>) {
        let answer = match (commit, self.result) {
            // A request that failed on its own keeps its own error.
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
    tx: Option<mpsc::Sender<Box<dyn Request>>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(crate) fn spawn(conn: Connection, max_batch: usize) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<Box<dyn Request>>();
        let thread = std::thread::Builder::new()
            .name("offload-store-writer".into())
            .spawn(move || run(conn, &rx, max_batch.max(1)))
            .map_err(|e| StoreError::Engine(format!("cannot start the store's writer: {e}")))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Runs `f` in the next group commit; returns its result once that commit is durable.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let request = Box::new(Call {
            f: Some(f),
            result: None,
            tx,
        });
        self.tx
            .as_ref()
            .ok_or_else(stopped)?
            .send(request)
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Engine("the store's writer thread has stopped".into())
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the store's writer thread panicked");
            }
        }
    }
}

fn run(mut conn: Connection, rx: &mpsc::Receiver<Box<dyn Request>>, max_batch: usize) {
    let mut batch: Vec<Box<dyn Request>> = Vec::with_capacity(max_batch);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let size = batch.len();
        let commit = run_batch(&mut conn, &mut batch);
        if let Err(e) = &commit {
            tracing::error!(error = %e, requests = size, "store group commit failed");
        }
        for request in batch.drain(..) {
            request.reply(commit.clone());
        }
    }
}

/// Runs a batch in one transaction. `Err` when the transaction as a whole did not commit.
fn run_batch(conn: &mut Connection, batch: &mut [Box<dyn Request>]) -> Result<(), String> {
    let mut tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    for request in batch.iter_mut() {
        let sp = tx.savepoint().map_err(|e| e.to_string())?;
        if request.run(&sp) {
            sp.commit().map_err(|e| e.to_string())?;
        } else {
            drop(sp);
            // Some errors (a full disk, an I/O error) make SQLite roll the whole transaction
            // back: the earlier requests of the batch are lost too, say so to all.
            if tx.is_autocommit() {
                return Err("the transaction was rolled back by the engine".into());
            }
        }
    }
    tx.commit().map_err(|e| e.to_string())
}
