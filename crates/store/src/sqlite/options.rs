//! How to open a [`SqliteStore`](super::SqliteStore): durability, group commit size, readers,
//! page cache.

/// When a commit is flushed to disk (SQLite's `PRAGMA synchronous`, in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// `fsync` (`fdatasync`) the WAL before a durable write is answered: a write that was
    /// answered survives a process crash, an OS crash and a power loss. Claims, lease
    /// renewals and progress are not flushed on their own (the next flush takes them along);
    /// a commit is visible to readers up to one flush before its writer is answered.
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
    /// Read connections, and the store's reader threads (default 4; at least 1): as many
    /// reads run at once, however many callers wait (the others wait in the readers' queue,
    /// holding no thread).
    pub readers: usize,
    /// The page cache of each connection, in KiB (default 2,048: 2 MiB; at least 64). The
    /// store holds `readers + 2` connections (the writer, the readers, the checkpointer), so
    /// SQLite's page caches take at most `(readers + 2) × cache_kib` however large the
    /// database grows (`PRAGMA cache_size`).
    pub cache_kib: u32,
    /// The attempts whose logs a manual retry keeps: the job's last ones (default
    /// [`DEFAULT_LOG_ATTEMPTS`](crate::logs::DEFAULT_LOG_ATTEMPTS), at least 1); the retry
    /// deletes the older attempts' logs.
    pub log_attempts: u32,
}

/// The default [`SqliteOptions::cache_kib`]: 2 MiB a connection (SQLite's own default).
pub const DEFAULT_CACHE_KIB: u32 = 2_048;

/// The smallest [`SqliteOptions::cache_kib`]: 64 KiB.
pub const MIN_CACHE_KIB: u32 = 64;

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            max_batch: 1_024,
            readers: 4,
            cache_kib: DEFAULT_CACHE_KIB,
            log_attempts: crate::logs::DEFAULT_LOG_ATTEMPTS,
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

    /// Sets [`SqliteOptions::log_attempts`] (1..=[`MAX_LOG_ATTEMPTS`](crate::logs::MAX_LOG_ATTEMPTS)).
    #[must_use]
    pub fn with_log_attempts(mut self, log_attempts: u32) -> Self {
        self.log_attempts = log_attempts.clamp(1, crate::logs::MAX_LOG_ATTEMPTS);
        self
    }

    /// Sets [`SqliteOptions::cache_kib`] (at least [`MIN_CACHE_KIB`]).
    #[must_use]
    pub fn with_cache_kib(mut self, cache_kib: u32) -> Self {
        self.cache_kib = cache_kib.max(MIN_CACHE_KIB);
        self
    }
}
