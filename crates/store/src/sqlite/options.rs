//! How to open a [`SqliteStore`](super::SqliteStore): durability, group commit size, readers.

/// When a commit is flushed to disk (SQLite's `PRAGMA synchronous`, in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// `fsync` the WAL at every commit: survives process crash, OS crash and power loss.
    #[default]
    Full,
    /// `fsync` at checkpoints only: survives a process crash (SIGKILL), not an OS crash or a
    /// power loss.
    Normal,
}

/// How to open a [`SqliteStore`](super::SqliteStore).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// The durability of a commit (default [`Synchronous::Full`]).
    pub synchronous: Synchronous,
    /// The most write calls in one group commit (default 1,024).
    pub max_batch: usize,
    /// Read connections, and reads running at once (default 4; at least 1): each read runs
    /// on a thread of Tokio's blocking pool, so this also bounds the threads reads take however
    /// many callers wait (more wait their turn).
    pub readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            max_batch: 1_024,
            readers: 4,
        }
    }
}

impl SqliteOptions {
    /// Sets [`SqliteOptions::synchronous`].
    #[must_use]
    pub fn with_synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// Sets [`SqliteOptions::max_batch`] (at least 1).
    #[must_use]
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// Sets [`SqliteOptions::readers`].
    #[must_use]
    pub fn with_readers(mut self, readers: usize) -> Self {
        self.readers = readers;
        self
    }
}
