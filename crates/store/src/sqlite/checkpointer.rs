//! Checkpoints the WAL beside the writer.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold: that
//! commit copies the WAL into the database file and `fsync`s it while every caller of its
//! group waits. This thread does it instead, on its own connection, with `PASSIVE` checkpoints
//! that never block the writer. The writer keeps a high automatic threshold as a backstop.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;

/// How often the thread looks at the WAL.
const PERIOD: Duration = Duration::from_millis(100);
/// Checkpoint when the WAL holds at least this many pages not yet copied back.
const THRESHOLD: i64 = 1_000;
/// The writer's own automatic checkpoint, should this thread fall behind.
pub(crate) const BACKSTOP_PAGES: u32 = 10_000;

#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

/// The checkpointer thread; dropping it stops the thread and waits for it.
pub(crate) struct Checkpointer {
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer").finish_non_exhaustive()
    }
}

impl Checkpointer {
    pub(crate) fn spawn(conn: Connection) -> Result<Self, StoreError> {
        let stop = Arc::new(Stop::default());
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("offload-store-checkpoint".into())
                .spawn(move || run(&conn, &stop))
                .map_err(|e| {
                    StoreError::Engine(format!("cannot start the store's checkpointer: {e}"))
                })?
        };
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        *self.stop.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.stop.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, stop: &Stop) {
    let mut stopped = stop.stopped.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        stopped = stop
            .wake
            .wait_timeout(stopped, PERIOD)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        if *stopped {
            return;
        }
        drop(stopped);
        // (busy, pages in the WAL, pages copied back): repeat while a lot is left.
        loop {
            let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get::<_, i64>("log")?, r.get::<_, i64>("checkpointed")?))
            });
            match result {
                Ok((log, done)) if log - done >= THRESHOLD => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "store checkpoint failed; retrying later");
                    break;
                }
            }
        }
        stopped = stop.stopped.lock().unwrap_or_else(|e| e.into_inner());
    }
}
