//! Read connections: a small pool beside the writer (WAL lets readers run during a commit),
//! used by threads of their own ([`ReadThreads`]).
//!
//! Not Tokio's blocking pool: a read that ends gives its turn to the next before its thread is
//! idle again, so under many concurrent reads `spawn_blocking` kept starting threads (105 for
//! 128 waiting line-protocol requests, each kept 10 s) however few reads ran at once.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;

use super::{engine, open_connection};
use crate::StoreError;

/// Read connections, opened on demand; at most `max_idle` are kept.
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
    cache_kib: u32,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("path", &self.path)
            .field("max_idle", &self.max_idle)
            .finish_non_exhaustive()
    }
}

/// A read waiting for a reader thread.
type Read = Box<dyn FnOnce(&Readers) + Send>;

/// The reader threads: each takes the next read from one queue and runs it on a connection of
/// the [`Readers`]. As many reads run at once as there are threads; the others wait in the
/// queue, holding no thread. Dropping it lets the queued reads finish, then joins the threads
/// (their connections close with the last of them).
pub(crate) struct ReadThreads {
    queue: Option<mpsc::Sender<Read>>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for ReadThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadThreads")
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl ReadThreads {
    /// Starts `n` (at least 1) threads reading with `readers`.
    pub(crate) fn spawn(readers: Readers, n: usize) -> Result<Self, StoreError> {
        let readers = Arc::new(readers);
        let (queue, rx) = mpsc::channel::<Read>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        for _ in 0..n.max(1) {
            let (rx, readers) = (Arc::clone(&rx), Arc::clone(&readers));
            let thread = std::thread::Builder::new()
                .name("offload-store-r".into())
                .spawn(move || loop {
                    let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(read) = next else { return };
                    // A read that panics fails alone: its caller finds its answer dropped.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| read(&readers)));
                })
                .map_err(|e| StoreError::Engine(format!("cannot start a reader thread: {e}")))?;
            threads.push(thread);
        }
        Ok(Self {
            queue: Some(queue),
            threads,
        })
    }

    /// Runs `f` in one read transaction on a reader thread.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let read: Read = Box::new(move |readers: &Readers| {
            let _ = reply.send(readers.with(f));
        });
        let gone = || StoreError::Engine("a store read failed: the readers stopped".into());
        self.queue
            .as_ref()
            .ok_or_else(gone)?
            .send(read)
            .map_err(|_| gone())?;
        answer
            .await
            .map_err(|_| StoreError::Engine("a store read failed: it panicked".into()))?
    }
}

impl Drop for ReadThreads {
    fn drop(&mut self) {
        self.queue.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Readers {
    pub(crate) fn new(path: PathBuf, max_idle: usize, cache_kib: u32) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
            max_idle,
            cache_kib,
        }
    }

    /// Runs `f` in one read transaction (a consistent snapshot). Blocking.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = open_connection(&self.path, self.cache_kib)?;
                c.execute_batch("PRAGMA query_only = ON").map_err(engine)?;
                c
            }
        };
        conn.execute_batch("BEGIN").map_err(engine)?;
        let result = f(&conn);
        // A read transaction has nothing to commit: COMMIT only ends the snapshot.
        let ended = conn.execute_batch("COMMIT").map_err(engine);
        if ended.is_ok() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < self.max_idle {
                idle.push(conn);
            }
        }
        let value = result?;
        ended?;
        Ok(value)
    }
}
