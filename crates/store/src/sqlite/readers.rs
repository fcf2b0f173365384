//! Read connections: a small pool beside the writer (WAL lets readers run during a commit).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{engine, open_connection};
use crate::StoreError;

/// Read connections, opened on demand; at most `max_idle` are kept, and as many reads run at
/// once ([`Readers::turn`]).
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
    cache_kib: u32,
    turns: Arc<Semaphore>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("path", &self.path)
            .field("max_idle", &self.max_idle)
            .finish_non_exhaustive()
    }
}

impl Readers {
    pub(crate) fn new(path: PathBuf, max_idle: usize, cache_kib: u32) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
            max_idle,
            cache_kib,
            turns: Arc::new(Semaphore::new(max_idle.max(1))),
        }
    }

    /// Waits for a turn to read (the permit is held for the read).
    pub(crate) async fn turn(&self) -> OwnedSemaphorePermit {
        Arc::clone(&self.turns)
            .acquire_owned()
            .await
            .expect("the read semaphore is never closed")
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
