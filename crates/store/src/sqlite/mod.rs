//! The embedded SQLite engine: [`SqliteStore`].
//!
//! One file, `DIR/offload.db`, in WAL mode, owned by one process (a lock file says so).
//!
//! - **Group commit.** Every write call goes through a channel to one writer thread that owns
//!   the write connection. The thread drains every pending call, runs them all in one
//!   transaction, commits once, and only then answers each caller. While a commit `fsync`s,
//!   the next calls queue up, so the busier the store, the more calls one `fsync` carries.
//!   Calls stay atomic one by one: in the rare batch where a call fails, the batch is rolled
//!   back and run again with a savepoint per call, so the failing call leaves no trace and the
//!   others commit (savepoints on every batch would cost more than the work: SQLite copies each
//!   page a savepoint touches into a statement journal).
//! - **Reads** (`get`, `list`, `counts`, `schedules`, `last_tick`, `stats`) run on a small pool of read
//!   connections: WAL readers see the last commit and never wait for the writer.
//! - **Checkpoints** (copying the WAL back into the database file) run on their own thread and
//!   connection, never inside a commit that callers wait on.
//! - **Counts** per (pool, state) live in a table the writer updates once per batch, so
//!   `counts` (metrics, `GET /v1/pools`) never scans the jobs.
//! - **Schema**: versioned (`PRAGMA user_version`) and migrated in one transaction at open; a
//!   file from a newer offload is refused. Each released version has a fixture database in
//!   `tests/data/` that the current code must open.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use offload_store::{Demand, NewJob, SqliteStore, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(dir.path())?;
//! let job = NewJob {
//!     job: "resize.js".into(),
//!     params: serde_json::json!({ "width": 640 }),
//!     pool: "node".into(),
//!     priority: 0,
//!     run_at: None,
//!     timeout_ms: Some(30_000),
//!     max_attempts: 3,
//!     backoff_ms: 1_000,
//!     backoff: None,
//!     keep_result_ms: None,
//!     key_ttl_ms: None,
//!     idempotency_key: None,
//!     cron: None,
//!     unique: false,
//!     after: Vec::new(),
//!     after_policy: Default::default(),
//! };
//! // Returns once the job is committed to disk.
//! let submitted = store.submit(vec![job], Duration::from_secs(3600)).await?;
//! let demand = [Demand { pool: "node".into(), n: 8 }];
//! let claimed = store.claim("node-1", &demand, Duration::from_secs(30)).await?;
//! assert_eq!(claimed[0].id, submitted[0].id);
//! assert_eq!(claimed[0].attempt, 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Errors
//!
//! [`SqliteStore::open`] fails with [`StoreError::SchemaTooNew`] when the file was written by a
//! newer offload, and with [`StoreError::Engine`] when the directory cannot be created, the file
//! cannot be opened, or **another process already has the data directory open** (a second
//! `offload serve` on the same `--data`: two daemons recovering each other's jobs would run
//! them twice).
//!
//! Calls fail with [`StoreError::NotFound`] for an unknown job (`get`, `cancel`, `retry`) or
//! schedule (`delete_schedule`); [`StoreError::Conflict`] for a `retry` of a job that is not
//! `dead` or `cancelled`; [`StoreError::Limit`] for a job with a number out of the
//! [`limits`](crate::limits) (`max_attempts: 0`, say: the whole batch is refused);
//! [`StoreError::IdempotencyConflict`] for a key of a job name reused with other params within the window;
//! [`StoreError::Invalid`] for a `list` cursor that did not come from `list`; [`StoreError::Engine`] when SQLite fails (a full disk,
//! an I/O error). A failing call changes nothing and does not fail the other calls of its group
//! commit, unless the commit itself fails, which fails them all.
//!
//! # Durability
//!
//! A write call returns only after its transaction committed. What "committed" survives depends
//! on [`Synchronous`]:
//!
//! - [`Synchronous::Full`] (the default): the WAL is `fsync`ed at every commit. A returned call
//!   survives a SIGKILL of the daemon, an OS crash and a power loss (as far as the disk honours
//!   `fsync`). Group commit pays one `fsync` per batch, not per call.
//! - [`Synchronous::Normal`]: the WAL is `fsync`ed only at checkpoints. A returned call survives
//!   a SIGKILL of the daemon at any moment (the committed frames are in the OS's page cache,
//!   which outlives the process), but the last commits before an OS crash or a power loss may
//!   be lost (the database stays consistent).
//!
//! Either way, SIGKILL loses no accepted job (`tests/crash.rs` kills a process under load and
//! checks). `Full` is the default because the daemon promises "a submit is answered only after
//! the job is committed", and to a user committed means on disk; group commit pays for it.
//! `Normal` trades the last moments before a power loss for throughput when `fsync` is slow.
//!
//! # Performance
//!
//! `benches/store.rs` on the project's 2-core VM (a 4 KiB write + `fsync` took ≈ 5 ms, other
//! builds running), jobs per second:
//!
//! | scenario                                   | `Full`  | `Normal` | writer CPU per job |
//! |--------------------------------------------|--------:|---------:|-------------------:|
//! | submit, 1 job per call, 64 callers         | 12,200  |  54,500  | 9–14 µs            |
//! | submit, 1 job per call, 256 callers        | 35,100  |  65,300  | 8–9 µs             |
//! | submit, 100 jobs per call, 8 callers       | 64,000  | 134,000  | 6 µs               |
//! | claim 100 + complete them, 4 loops         | 20,500  |  41,000  | 16–18 µs           |
//! | claim 1 + complete it, 64 loops            |  5,600  |  16,500  | 37–52 µs           |
//!
//! With `Full`, every commit waits for one `fsync`, so single calls go as fast as there are
//! concurrent callers per `fsync`: batch where you can (the daemon claims and completes in
//! batches), and expect the rates to follow the disk's `fsync` latency.
//!
//! # Caveats
//!
//! - One process per data directory: [`SqliteStore::open`] holds a lock file
//!   (`DIR/offload.lock`) until the store is dropped. Nothing in the engine assumes a single
//!   process otherwise; leases work as the [`Store`] trait says.
//! - Files are private: a data directory the store creates is `0700`; the database, its
//!   `-wal`/`-shm` files and the lock file are `0600` (an existing database with a wider mode
//!   is narrowed; an existing directory keeps its mode, with a warning when others can read
//!   it).
//! - Dropping the store waits for the queued writes to finish and closes the file (which
//!   checkpoints the WAL: a closed store is one file); do not drop it in a latency-sensitive
//!   place.
//! - Reads run on [`SqliteOptions::readers`] threads of the store's own (`offload-store-r`;
//!   more reads wait in their queue, holding no thread): call the store from a Tokio runtime.
//! - Timestamps are the store's clock (`now_ms` when a call runs in the writer), not the
//!   caller's, except `Completion::started_at`/`ended_at`, which are recorded as given.
//! - `list` pages with `limit: 0` hold 100 jobs; any limit is capped at 1,000.
//! - A `retry` keeps the attempt count and numbers the next attempt on (3 after 2; schema
//!   v10); it raises `max_attempts` by the job's round (its `max_attempts` at submit), so the
//!   job gets as many attempts again. `get` keeps every attempt, in order. The retry keeps the
//!   logs of the job's last [`SqliteOptions::log_attempts`] attempts and deletes older ones.
//! - A job whose cancel was asked while it ran does not run again: a `Retry` completion or a
//!   `recover` makes it `cancelled`.
//! - `recover` puts a lost job back in the queue even when its attempts are used up: the
//!   attempt number of the next claim may exceed `max_attempts`, and the caller decides.
//! - `recover(Some(node))` takes back that node's running jobs *and* any expired lease.
//! - A cron tick is unique while its job is kept; `last_tick` survives the purge of the jobs
//!   (it is kept per schedule), so a restart never fires an old tick again.

mod checkpointer;
mod counts;
mod files;
mod flusher;
pub mod memory;
mod ops;
mod options;
mod readers;
mod schema;
mod writer;

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

use crate::{
    now_ms, Beat, BulkAction, BulkOutcome, CancelResult, Claimed, Completion, Counts, CronSchedule,
    CronState, Demand, DrainOrder, DrainRequest, JobFilter, JobId, JobRecord, JobState, ListFilter,
    LogLine, LogQuery, Millis, NewJob, NodeRecord, NodeStart, Page, PausedQueue, Queue, StatCell,
    StatRow, StatsQuery, Store, StoreError, Submitted, Throttle, ThrottleState,
};
use checkpointer::Checkpointer;
use counts::Deltas;
use readers::{ReadThreads, Readers};
use writer::Writer;

pub use options::{SqliteOptions, Synchronous, DEFAULT_CACHE_KIB, MIN_CACHE_KIB};

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: u32 = schema::VERSION;

/// The database file's name in the data directory.
pub const DB_FILE: &str = "offload.db";

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "offload.lock";

/// The embedded SQLite [`Store`]. See the [module docs](self).
#[derive(Debug)]
pub struct SqliteStore {
    // Field order is drop order: the writer finishes and closes before the lock is released.
    writer: Writer,
    _checkpointer: Option<Checkpointer>,
    readers: Option<ReadThreads>,
    /// How many attempts' logs a retry keeps ([`SqliteOptions::log_attempts`]).
    log_attempts: u32,
    path: Option<PathBuf>,
    _lock: Option<File>,
}

pub(crate) fn engine(e: rusqlite::Error) -> StoreError {
    let text = e.to_string();
    if text.contains("jobs.unique_key") {
        return crate::rules::submit::unique_conflict();
    }
    StoreError::Engine(text)
}

/// The settings every connection shares; `cache_kib` bounds its page cache.
pub(crate) fn configure(conn: &Connection, cache_kib: u32) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_secs(5)).map_err(engine)?;
    // A negative cache_size is in KiB. Without it a connection's cache would grow to
    // SQLite's default (2 MiB), and the writer's used to be set to 32 MiB: it filled as the
    // database grew (bench/dashboard-soak/README.md).
    conn.execute_batch(&format!("PRAGMA cache_size = -{cache_kib}"))
        .map_err(engine)?;
    conn.set_prepared_statement_cache_capacity(64);
    // Plans never depend on bound values: without this, SQLite (built with STAT4) re-prepares
    // the claim statement at every call.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(engine)?;
    // Schema v9's release of dependents fired itself, one level per link of a chain; v11's
    // triggers never fire themselves (the writer walks a chain level by level:
    // `ops::after::release_cascade`), but a trigger that did must still run, not be skipped.
    conn.pragma_update(None, "recursive_triggers", true)
        .map_err(engine)?;
    Ok(())
}

/// Opens a read-write connection to `path`, configured.
pub(crate) fn open_connection(path: &Path, cache_kib: u32) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Engine(format!("cannot open {}: {e}", path.display())))?;
    configure(&conn, cache_kib)?;
    Ok(conn)
}

/// Takes the data directory's lock, or says who holds it.
fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(LOCK_FILE);
    let io = |e: std::io::Error| StoreError::Engine(format!("cannot lock {}: {e}", path.display()));
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(files::FILE_MODE)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                String::from("another process")
            } else {
                format!("process {holder}")
            };
            return Err(StoreError::Engine(format!(
                "the data directory {} is in use by {who} (is another offload serve running \
                 on it?)",
                dir.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    Ok(file)
}

impl SqliteStore {
    /// Opens (creating it and `dir` if needed) the store `dir/offload.db` with the default
    /// [`SqliteOptions`], and migrates its schema.
    ///
    /// # Errors
    ///
    /// See the [module docs](self#errors).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, SqliteOptions::default())
    }

    /// [`SqliteStore::open`] with options.
    ///
    /// # Errors
    ///
    /// See the [module docs](self#errors).
    pub fn open_with(dir: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        files::create_dir(dir)?;
        let lock = lock_dir(dir)?;
        let path = dir.join(DB_FILE);
        files::private_file(&path)?;
        for side in ["-wal", "-shm"] {
            let side = dir.join(format!("{DB_FILE}{side}"));
            if side.exists() {
                files::private_file(&side)?;
            }
        }
        let cache_kib = options.cache_kib.max(MIN_CACHE_KIB);
        let mut conn = open_connection(&path, cache_kib)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get("journal_mode"))
            .map_err(engine)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Engine(format!(
                "cannot put {} in WAL mode (journal mode is {mode})",
                path.display()
            )));
        }
        let sync = match options.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {sync};
             PRAGMA temp_store = MEMORY;
             PRAGMA journal_size_limit = 67108864;
             PRAGMA wal_autocheckpoint = {};",
            checkpointer::BACKSTOP_PAGES
        ))
        .map_err(engine)?;
        schema::migrate(&mut conn)?;
        let checkpoints = open_connection(&path, cache_kib)?;
        checkpoints
            .execute_batch(&format!("PRAGMA synchronous = {sync}"))
            .map_err(engine)?;
        // `FULL`: the writer's durable calls are answered once the WAL is flushed.
        let wal = matches!(options.synchronous, Synchronous::Full)
            .then(|| dir.join(format!("{DB_FILE}-wal")));
        let writer = Writer::spawn(conn, options.max_batch, wal, ops::after::release_cascade)?;
        Ok(Self {
            writer,
            _checkpointer: Some(Checkpointer::spawn(checkpoints)?),
            log_attempts: options.log_attempts.clamp(1, crate::logs::MAX_LOG_ATTEMPTS),
            readers: Some(ReadThreads::spawn(
                Readers::new(path.clone(), options.readers, cache_kib),
                options.readers,
            )?),
            path: Some(path),
            _lock: Some(lock),
        })
    }

    /// A store in memory, gone when dropped: for tests. Reads go through the writer (an
    /// in-memory database has one connection); the semantics are the same.
    ///
    /// # Errors
    ///
    /// [`StoreError::Engine`] if SQLite cannot start.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let mut conn = Connection::open_in_memory().map_err(engine)?;
        // An in-memory database lives in its page cache, whatever the cache's size.
        configure(&conn, DEFAULT_CACHE_KIB)?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            // In memory: nothing is flushed, so there is nothing to switch.
            writer: Writer::spawn(
                conn,
                SqliteOptions::default().max_batch,
                None,
                ops::after::release_cascade,
            )?,
            _checkpointer: None,
            readers: None,
            log_attempts: crate::logs::DEFAULT_LOG_ATTEMPTS,
            path: None,
            _lock: None,
        })
    }

    /// The database file (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    async fn write<T, F>(&self, weight: usize, f: F) -> Result<T, StoreError>
    where
        F: FnMut(&Connection, &mut Deltas) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.writer.call(weight, f).await
    }

    async fn read<T, F>(&self, mut f: F) -> Result<T, StoreError>
    where
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        match &self.readers {
            Some(readers) => readers.read(f).await,
            None => self.writer.call(1, move |c, _: &mut Deltas| f(c)).await,
        }
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn queued_signal(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.writer.queued_signal())
    }

    async fn submit(
        &self,
        jobs: Vec<NewJob>,
        idempotency_window: Duration,
    ) -> Result<Vec<Submitted>, StoreError> {
        crate::rules::submit::validate_all(&jobs)?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        // A submit ends and deletes no job: no release of dependents can follow it.
        self.writer
            .call_ending_none(jobs.len(), move |c, d| {
                ops::submit::submit(c, d, &jobs, idempotency_window, now_ms())
            })
            .await
    }

    async fn claim(
        &self,
        node: &str,
        demand: &[Demand],
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        if demand.iter().all(|d| d.n == 0) {
            return Ok(Vec::new());
        }
        let node = node.to_owned();
        let demand = demand.to_vec();
        let weight = demand.iter().fold(0usize, |w, d| w.saturating_add(d.n));
        // Lazy: a claim lost in a crash leaves its job queued, as recovery would. A claim
        // ends no job (no release of dependents can follow it).
        self.writer
            .call_lazy_ending_none(weight, move |c, d| {
                ops::claim::claim(c, d, &node, &demand, lease, now_ms())
            })
            .await
    }

    async fn renew(
        &self,
        node: &str,
        ids: &[JobId],
        lease: Duration,
    ) -> Result<Vec<JobId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let node = node.to_owned();
        let ids = ids.to_vec();
        // Lazy: after a crash every lease of this node is recovered anyway.
        self.writer
            .call_lazy(ids.len(), move |c, _| {
                ops::claim::renew(c, &node, &ids, lease, now_ms())
            })
            .await
    }

    async fn complete(&self, done: Vec<Completion>) -> Result<(), StoreError> {
        if done.is_empty() {
            return Ok(());
        }
        self.write(done.len(), move |c, d| {
            ops::complete::complete(c, d, &done, now_ms())
        })
        .await
    }

    async fn progress(&self, updates: Vec<(JobId, Value)>) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        // Lazy: progress lost in a crash of the machine is only older progress.
        self.writer
            .call_lazy(updates.len(), move |c, _| {
                ops::complete::progress(c, &updates, now_ms())
            })
            .await
    }

    async fn recover(&self, node: Option<&str>) -> Result<u64, StoreError> {
        let node = node.map(str::to_owned);
        self.write(1, move |c, d| {
            ops::claim::recover(c, d, node.as_deref(), now_ms())
        })
        .await
    }

    async fn get(&self, id: JobId) -> Result<JobRecord, StoreError> {
        self.read(move |c| ops::read::get(c, id)).await
    }

    async fn list(&self, filter: ListFilter) -> Result<Page, StoreError> {
        self.read(move |c| ops::read::list(c, &filter)).await
    }

    async fn cancel(&self, id: JobId) -> Result<CancelResult, StoreError> {
        self.write(1, move |c, d| ops::admin::cancel(c, d, id, now_ms()))
            .await
    }

    async fn retry(&self, id: JobId) -> Result<JobState, StoreError> {
        let keep = self.log_attempts;
        self.write(1, move |c, d| ops::admin::retry(c, d, id, now_ms(), keep))
            .await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        self.read(ops::read::counts).await
    }

    async fn purge(&self, before: Millis) -> Result<u64, StoreError> {
        self.write(1, move |c, d| ops::admin::purge(c, d, before))
            .await
    }

    async fn put_schedule(&self, schedule: CronSchedule) -> Result<(), StoreError> {
        self.write(1, move |c, _| ops::cron::put_schedule(c, &schedule))
            .await
    }

    async fn schedules(&self) -> Result<Vec<CronSchedule>, StoreError> {
        self.read(ops::cron::schedules).await
    }

    async fn delete_schedule(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.write(1, move |c, _| ops::cron::delete_schedule(c, &name))
            .await
    }

    async fn last_tick(&self, name: &str) -> Result<Option<Millis>, StoreError> {
        let name = name.to_owned();
        self.read(move |c| ops::cron::last_tick(c, &name)).await
    }

    async fn cron_states(&self) -> Result<Vec<CronState>, StoreError> {
        self.read(ops::cron::cron_states).await
    }

    async fn pause_schedule(
        &self,
        name: &str,
        at: Millis,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let (name, reason) = (name.to_owned(), reason.to_owned());
        self.write(1, move |c, _| ops::cron::pause(c, &name, at, &reason))
            .await
    }

    async fn resume_schedule(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.write(1, move |c, _| ops::cron::resume(c, &name)).await
    }

    async fn pause_queue(&self, queue: &Queue, at: Millis) -> Result<bool, StoreError> {
        let queue = queue.clone();
        self.write(1, move |c, _| ops::queues::pause(c, &queue, at))
            .await
    }

    async fn resume_queue(&self, queue: &Queue) -> Result<bool, StoreError> {
        let queue = queue.clone();
        self.write(1, move |c, _| ops::queues::resume(c, &queue))
            .await
    }

    async fn paused_queues(&self) -> Result<Vec<PausedQueue>, StoreError> {
        self.read(ops::queues::list).await
    }

    async fn set_limits(&self, limits: Vec<Throttle>) -> Result<(), StoreError> {
        crate::throttle::check_all(&limits)?;
        self.write(1, move |c, _| ops::throttle::set(c, &limits, now_ms()))
            .await
    }

    async fn limits(&self) -> Result<Vec<ThrottleState>, StoreError> {
        self.read(|c| ops::throttle::list(c, now_ms())).await
    }

    async fn delete(&self, id: JobId) -> Result<JobState, StoreError> {
        self.write(1, move |c, d| ops::bulk::delete(c, d, id)).await
    }

    async fn bulk(
        &self,
        action: BulkAction,
        filter: &JobFilter,
        limit: usize,
    ) -> Result<BulkOutcome, StoreError> {
        filter.check(action, limit)?;
        let filter = filter.clone();
        let keep = self.log_attempts;
        self.write(limit, move |c, d| {
            ops::bulk::bulk(c, d, action, &filter, limit, now_ms(), keep)
        })
        .await
    }

    async fn register_node(
        &self,
        node: &NodeStart,
        live: Duration,
        take_over: Option<Millis>,
    ) -> Result<(), StoreError> {
        let node = node.clone();
        self.write(1, move |c, _| {
            ops::nodes::register(c, &node, live, take_over, now_ms())
        })
        .await
    }

    async fn heartbeat(&self, id: &str, beat: &Beat) -> Result<Option<DrainOrder>, StoreError> {
        let (id, beat) = (id.to_owned(), beat.clone());
        self.write(1, move |c, _| {
            ops::nodes::heartbeat(c, &id, &beat, now_ms())
        })
        .await
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        self.read(|c| ops::nodes::list(c, now_ms())).await
    }

    async fn drain_node(
        &self,
        id: &str,
        order: Option<DrainRequest>,
    ) -> Result<NodeRecord, StoreError> {
        let id = id.to_owned();
        self.write(1, move |c, _| ops::nodes::drain(c, &id, order, now_ms()))
            .await
    }

    async fn stop_node(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.write(1, move |c, _| ops::nodes::stop(c, &id, now_ms()))
            .await
    }

    async fn purge_nodes(&self, older_than: Duration) -> Result<u64, StoreError> {
        self.write(1, move |c, _| ops::nodes::purge(c, older_than, now_ms()))
            .await
    }

    async fn append_logs(&self, lines: Vec<LogLine>) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        crate::logs::check_batch(&lines)?;
        self.write(lines.len(), move |c, _| ops::logs::append(c, &lines))
            .await
    }

    async fn logs(&self, id: JobId, query: LogQuery) -> Result<Vec<LogLine>, StoreError> {
        query.check()?;
        self.read(move |c| ops::logs::read(c, id, &query)).await
    }

    async fn add_stats(&self, rows: Vec<StatRow>) -> Result<(), StoreError> {
        let rows = crate::stats::normalize(rows)?;
        if rows.is_empty() {
            return Ok(());
        }
        self.write(rows.len(), move |c, _| ops::stats::add(c, &rows))
            .await
    }

    async fn stats(&self, q: &StatsQuery) -> Result<Vec<StatCell>, StoreError> {
        q.check()?;
        let q = q.clone();
        self.read(move |c| ops::stats::read(c, &q)).await
    }

    async fn purge_stats(&self, before: Millis) -> Result<u64, StoreError> {
        self.write(1, move |c, _| ops::stats::purge(c, before))
            .await
    }
}
