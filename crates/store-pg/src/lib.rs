//! The PostgreSQL engine of offload's [`Store`]: several `offload serve` nodes share one queue.
//!
//! [`PgStore`] keeps the jobs in one PostgreSQL database that every node connects to. It
//! implements the [`Store`] contract with the semantics of the embedded SQLite engine
//! (`offload_store::SqliteStore`); what changes is that several processes claim at once:
//!
//! - **Claims** lock the jobs they take with `FOR UPDATE SKIP LOCKED`: concurrent claimers on
//!   other nodes skip those rows instead of waiting for them, and no job is handed out twice.
//! - **Leases** are timestamps on the database's clock (`offload_now_ms()`), so the nodes'
//!   clocks need not agree. The daemon renews its leases every lease/3; every node runs
//!   [`Store::recover`]`(None)` on the same period, which re-queues the running jobs of a node
//!   that stopped renewing (a SIGKILL, a lost machine) once their lease ended, the attempt
//!   counted and recorded as `lease_expired`.
//! - **Cron ticks** are unique per `(schedule, tick)` (a unique index): when every node fires
//!   the same tick, one job is created and the others get it back as a duplicate.
//! - **Idempotency keys** are a primary key: concurrent submits of one key on two nodes create
//!   one job.
//! - **Wake-ups**: after a submit, a retry or a re-queue commits, the store sends a `NOTIFY`
//!   (see [`notify`]); [`PgStore::notifications`] delivers what other nodes sent, so an idle
//!   node claims at once instead of at its next poll. Polling stays the fallback.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use offload_store::{Demand, NewJob, Store};
//! use offload_store_pg::PgStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgStore::connect("postgres://postgres@127.0.0.1/offload").await?;
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
//! let submitted = store.submit(vec![job], Duration::from_secs(3600)).await?;
//! let demand = [Demand { pool: "node".into(), n: 8 }];
//! let claimed = store.claim("node-1", &demand, Duration::from_secs(30)).await?;
//! assert_eq!(claimed[0].id, submitted[0].id);
//! # Ok(())
//! # }
//! ```
//!
//! # TLS
//!
//! `sslmode`, `sslrootcert`, `sslcert` and `sslkey` in the URL, as libpq reads them (`tls.rs`;
//! `docs/multi-node.md` → Operations). The default, `prefer`, encrypts when the server offers
//! it.
//!
//! # Errors
//!
//! [`PgStore::connect`] fails with [`StoreError::Engine`] when the URL is not a PostgreSQL
//! connection string, a TLS parameter or file cannot be used (named in the message), the
//! server cannot be reached or its certificate is refused, and with [`StoreError::SchemaTooNew`]
//! when the database was migrated by a newer offload. Calls fail with [`StoreError::Engine`]
//! when PostgreSQL does (connection lost, disk full); a failed call changed nothing.
//!
//! # Caveats
//!
//! - Tables are named `offload_*` in the connection's schema (`search_path`); run one offload
//!   cluster per database (the `NOTIFY` channel is per database).
//! - Connections are plain TCP or Unix sockets: TLS (`sslmode=require`) is not built in.
//! - Every node needs its own node name (`offload serve` keeps it in `--data/node-id`): two
//!   nodes with one name would recover each other's running jobs at start.
//! - `list` pages with `limit: 0` hold 100 jobs; any limit is capped at 1,000.
#![deny(missing_docs)]

pub mod notify;
mod ops;
mod schema;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use offload_store::{
    Beat, BulkAction, BulkOutcome, CancelResult, Claimed, Completion, Counts, CronSchedule,
    CronState, Demand, DrainOrder, DrainRequest, JobFilter, JobId, JobRecord, JobState, ListFilter,
    LogLine, LogQuery, Millis, NewJob, NodeRecord, NodeStart, Page, PausedQueue, Queue, StatCell,
    StatRow, StatsQuery, Store, StoreError, Submitted, Throttle, ThrottleState,
};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};

/// The notices live in `offload-store` (a daemon follows them without this engine).
pub use offload_store::{JobNotice, Notice};

/// The schema version this build writes (the highest row of `offload_schema`).
pub const SCHEMA_VERSION: u32 = schema::VERSION;

/// How to connect a [`PgStore`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PgOptions {
    /// Connections in the pool at most (default 16). Each node holds up to this many, plus one
    /// for `LISTEN`: size `max_connections` of the server for every node.
    pub pool_size: usize,
    /// Whether to open the `LISTEN`/`NOTIFY` connection (default true). Without it, other
    /// nodes are not woken by this node's submits and it hears nothing: polling only.
    pub listen: bool,
    /// The attempts whose logs a manual retry keeps: the job's last ones (default
    /// [`DEFAULT_LOG_ATTEMPTS`](offload_store::logs::DEFAULT_LOG_ATTEMPTS), at least 1); the
    /// retry deletes the older attempts' logs.
    pub log_attempts: u32,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            listen: true,
            log_attempts: offload_store::logs::DEFAULT_LOG_ATTEMPTS,
        }
    }
}

impl PgOptions {
    /// Sets [`PgOptions::pool_size`] (at least 1).
    #[must_use]
    pub fn with_pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// Sets [`PgOptions::log_attempts`] (1..=[`MAX_LOG_ATTEMPTS`](offload_store::logs::MAX_LOG_ATTEMPTS)).
    #[must_use]
    pub fn with_log_attempts(mut self, n: u32) -> Self {
        self.log_attempts = n.clamp(1, offload_store::logs::MAX_LOG_ATTEMPTS);
        self
    }

    /// Sets [`PgOptions::listen`].
    #[must_use]
    pub fn with_listen(mut self, listen: bool) -> Self {
        self.listen = listen;
        self
    }
}

/// The PostgreSQL [`Store`]. See the [crate docs](crate).
pub struct PgStore {
    pool: Pool,
    notices: broadcast::Sender<Notice>,
    outgoing: Option<mpsc::UnboundedSender<Notice>>,
    channel: Option<tokio::task::JoinHandle<()>>,
    target: String,
    /// [`PgOptions::log_attempts`].
    log_attempts: u32,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .field("listen", &self.channel.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(c) = self.channel.take() {
            c.abort();
        }
    }
}

/// A PostgreSQL error as text: the server's code and message when it sent one.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{} ({}){}",
            db.message(),
            db.code().code(),
            db.detail().map_or(String::new(), |d| format!(": {d}"))
        ),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(cause) = src {
                s.push_str(": ");
                s.push_str(&cause.to_string());
                src = cause.source();
            }
            s
        }
    }
}

pub(crate) fn engine(e: tokio_postgres::Error) -> StoreError {
    if e.as_db_error()
        .is_some_and(|db| db.constraint() == Some("offload_jobs_unique_active"))
    {
        return offload_store::rules::submit::unique_conflict();
    }
    StoreError::Engine(describe(&e))
}

/// Where a configuration points, without its password: for messages.
/// `e` and its causes, `: `-separated (a pool's error hides the TLS or socket error under it).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = cause.source();
    }
    s
}

fn target_of(cfg: &tokio_postgres::Config) -> String {
    let host = cfg
        .get_hosts()
        .first()
        .map_or_else(String::new, |h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        });
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        cfg.get_user().unwrap_or(""),
        cfg.get_dbname().unwrap_or("")
    )
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`, or the key-value form) with the
    /// default [`PgOptions`], and migrates the schema. Needs a Tokio runtime (it spawns the
    /// `LISTEN` task).
    ///
    /// # Errors
    ///
    /// See the [crate docs](crate#errors).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PgOptions::default()).await
    }

    /// [`PgStore::connect`] with options.
    ///
    /// # Errors
    ///
    /// See the [crate docs](crate#errors).
    pub async fn connect_with(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        let (url, tls_params) = tls::split(url)?;
        let tls = tls::connector(&tls_params)?;
        let mut cfg: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Engine(format!(
                "the store URL is not a PostgreSQL connection string: {e}"
            ))
        })?;
        cfg.ssl_mode(tls::ssl_mode(tls_params.mode));
        if cfg.get_application_name().is_none() {
            cfg.application_name("offload");
        }
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(Duration::from_secs(10));
        }
        let target = target_of(&cfg);
        let manager = Manager::from_config(
            cfg.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Engine(format!("cannot build the connection pool: {e}")))?;
        let mut client = pool.get().await.map_err(|e| {
            StoreError::Engine(format!(
                "cannot connect to PostgreSQL at {target}: {}",
                with_causes(&e)
            ))
        })?;
        schema::migrate(&mut client).await?;
        drop(client);
        let (notices, _) = broadcast::channel(4096);
        let (outgoing, channel) = if options.listen {
            let (tx, rx) = mpsc::unbounded_channel();
            let (ready_tx, ready) = oneshot::channel();
            let task = tokio::spawn(notify::run(cfg, tls, rx, notices.clone(), ready_tx));
            // From here on, this store hears what the others send (unless the server refuses
            // LISTEN for a while: then polling alone, until the task gets through).
            if tokio::time::timeout(Duration::from_secs(10), ready)
                .await
                .is_err()
            {
                tracing::warn!(%target, "LISTEN is not up yet; other nodes' wake-ups may be missed until it is");
            }
            (Some(tx), Some(task))
        } else {
            (None, None)
        };
        Ok(Self {
            pool,
            notices,
            outgoing,
            channel,
            target,
            log_attempts: options
                .log_attempts
                .clamp(1, offload_store::logs::MAX_LOG_ATTEMPTS),
        })
    }

    /// What other nodes announce (see [`Notice`]): everything sent after [`PgStore::connect`]
    /// returned and after this call. Each call is a new receiver; a receiver that falls behind
    /// by more than 4,096 notices gets `Lagged` (then look at the queue).
    pub fn notifications(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// Where the store is (`user@host:port/db`, no password).
    pub fn target(&self) -> &str {
        &self.target
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| {
            StoreError::Engine(format!(
                "cannot get a connection to PostgreSQL at {}: {}",
                self.target,
                with_causes(&e)
            ))
        })
    }

    fn announce(&self, notices: impl IntoIterator<Item = Notice>) {
        if let Some(tx) = &self.outgoing {
            for n in notices {
                let _ = tx.send(n);
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn submit(
        &self,
        jobs: Vec<NewJob>,
        idempotency_window: Duration,
    ) -> Result<Vec<Submitted>, StoreError> {
        offload_store::rules::submit::validate_all(&jobs)?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.client().await?;
        let (out, due) = ops::submit::submit(&mut c, jobs, idempotency_window).await?;
        self.announce(due.into_iter().map(|pool| Notice::Due { pool }));
        Ok(out)
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
        let mut c = self.client().await?;
        let (claimed, promoted) = ops::claim::claim(&mut c, node, demand, lease).await?;
        self.announce(promoted.into_iter().map(|pool| Notice::Due { pool }));
        Ok(claimed)
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
        let c = self.client().await?;
        ops::claim::renew(&c, node, ids, lease).await
    }

    async fn complete(&self, done: Vec<Completion>) -> Result<(), StoreError> {
        if done.is_empty() {
            return Ok(());
        }
        let c = self.client().await?;
        let notices = ops::complete::complete(&c, done).await?;
        self.announce(notices);
        Ok(())
    }

    async fn progress(&self, updates: Vec<(JobId, Value)>) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        let c = self.client().await?;
        let notices: Vec<Notice> = if self.outgoing.is_some() {
            updates
                .iter()
                .map(|(id, data)| Notice::Progress {
                    id: *id,
                    data: data.clone(),
                })
                .collect()
        } else {
            Vec::new()
        };
        ops::complete::progress(&c, updates).await?;
        self.announce(notices);
        Ok(())
    }

    async fn recover(&self, node: Option<&str>) -> Result<u64, StoreError> {
        let c = self.client().await?;
        let notices = ops::claim::recover(&c, node).await?;
        let n = notices
            .iter()
            .filter(|n| matches!(n, Notice::Job(_)))
            .count() as u64;
        self.announce(notices);
        Ok(n)
    }

    async fn get(&self, id: JobId) -> Result<JobRecord, StoreError> {
        let c = self.client().await?;
        ops::read::get(&c, id).await
    }

    async fn list(&self, filter: ListFilter) -> Result<Page, StoreError> {
        let c = self.client().await?;
        ops::read::list(&c, &filter).await
    }

    async fn cancel(&self, id: JobId) -> Result<CancelResult, StoreError> {
        let mut c = self.client().await?;
        let (result, notice) = ops::admin::cancel(&mut c, id).await?;
        self.announce(notice);
        Ok(result)
    }

    async fn retry(&self, id: JobId) -> Result<JobState, StoreError> {
        let mut c = self.client().await?;
        let (state, notice) = ops::admin::retry(&mut c, id, self.log_attempts).await?;
        self.announce(Some(notice));
        Ok(state)
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        let c = self.client().await?;
        ops::read::counts(&c).await
    }

    async fn purge(&self, before: Millis) -> Result<u64, StoreError> {
        let c = self.client().await?;
        ops::admin::purge(&c, before).await
    }

    async fn put_schedule(&self, schedule: CronSchedule) -> Result<(), StoreError> {
        let c = self.client().await?;
        ops::cron::put_schedule(&c, &schedule).await?;
        self.announce(Some(Notice::Schedules));
        Ok(())
    }

    async fn schedules(&self) -> Result<Vec<CronSchedule>, StoreError> {
        let c = self.client().await?;
        ops::cron::schedules(&c).await
    }

    async fn delete_schedule(&self, name: &str) -> Result<(), StoreError> {
        let c = self.client().await?;
        ops::cron::delete_schedule(&c, name).await?;
        self.announce(Some(Notice::Schedules));
        Ok(())
    }

    async fn last_tick(&self, name: &str) -> Result<Option<Millis>, StoreError> {
        let c = self.client().await?;
        ops::cron::last_tick(&c, name).await
    }

    async fn cron_states(&self) -> Result<Vec<CronState>, StoreError> {
        let c = self.client().await?;
        ops::cron::cron_states(&c).await
    }

    async fn pause_schedule(
        &self,
        name: &str,
        at: Millis,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let paused = ops::cron::pause(&c, name, at, reason).await?;
        if paused {
            self.announce(Some(Notice::Schedules));
        }
        Ok(paused)
    }

    async fn resume_schedule(&self, name: &str) -> Result<(), StoreError> {
        let c = self.client().await?;
        ops::cron::resume(&c, name).await?;
        self.announce(Some(Notice::Schedules));
        Ok(())
    }

    async fn pause_queue(&self, queue: &Queue, at: Millis) -> Result<bool, StoreError> {
        let mut c = self.client().await?;
        ops::queues::pause(&mut c, queue, at).await
    }

    async fn resume_queue(&self, queue: &Queue) -> Result<bool, StoreError> {
        let c = self.client().await?;
        ops::queues::resume(&c, queue).await
    }

    async fn paused_queues(&self) -> Result<Vec<PausedQueue>, StoreError> {
        let c = self.client().await?;
        ops::queues::list(&c).await
    }

    async fn set_limits(&self, limits: Vec<Throttle>) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        ops::throttle::set(&mut c, &limits).await
    }

    async fn limits(&self) -> Result<Vec<ThrottleState>, StoreError> {
        let c = self.client().await?;
        ops::throttle::list(&c).await
    }

    async fn delete(&self, id: JobId) -> Result<JobState, StoreError> {
        let mut c = self.client().await?;
        ops::bulk::delete(&mut c, id).await
    }

    async fn bulk(
        &self,
        action: BulkAction,
        filter: &JobFilter,
        limit: usize,
    ) -> Result<BulkOutcome, StoreError> {
        let mut c = self.client().await?;
        let (outcome, notices) =
            ops::bulk::bulk(&mut c, action, filter, limit, self.log_attempts).await?;
        self.announce(notices);
        Ok(outcome)
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn register_node(
        &self,
        node: &NodeStart,
        live: Duration,
        take_over: Option<Millis>,
    ) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        ops::nodes::register(&mut c, node, live, take_over).await
    }

    async fn heartbeat(&self, id: &str, beat: &Beat) -> Result<Option<DrainOrder>, StoreError> {
        let c = self.client().await?;
        ops::nodes::heartbeat(&c, id, beat).await
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let c = self.client().await?;
        ops::nodes::list(&c).await
    }

    async fn drain_node(
        &self,
        id: &str,
        order: Option<DrainRequest>,
    ) -> Result<NodeRecord, StoreError> {
        let c = self.client().await?;
        let node = ops::nodes::drain(&c, id, order).await?;
        // The node learns it at once (else at its next heartbeat).
        self.announce(Some(Notice::Drain {
            node: id.to_owned(),
        }));
        Ok(node)
    }

    async fn stop_node(&self, id: &str) -> Result<(), StoreError> {
        let c = self.client().await?;
        ops::nodes::stop(&c, id).await
    }

    async fn purge_nodes(&self, older_than: Duration) -> Result<u64, StoreError> {
        let c = self.client().await?;
        ops::nodes::purge(&c, older_than).await
    }

    async fn append_logs(&self, lines: Vec<LogLine>) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let c = self.client().await?;
        ops::logs::append(&c, &lines).await
    }

    async fn logs(&self, id: JobId, query: LogQuery) -> Result<Vec<LogLine>, StoreError> {
        query.check()?;
        let c = self.client().await?;
        ops::logs::read(&c, id, &query).await
    }

    async fn add_stats(&self, rows: Vec<StatRow>) -> Result<(), StoreError> {
        let rows = offload_store::stats::normalize(rows)?;
        if rows.is_empty() {
            return Ok(());
        }
        let c = self.client().await?;
        ops::stats::add(&c, &rows).await
    }

    async fn stats(&self, q: &StatsQuery) -> Result<Vec<StatCell>, StoreError> {
        q.check()?;
        let c = self.client().await?;
        ops::stats::read(&c, q).await
    }

    async fn purge_stats(&self, before: Millis) -> Result<u64, StoreError> {
        let c = self.client().await?;
        ops::stats::purge(&c, before).await
    }
}

#[cfg(test)]
mod tests {
    /// The shared migration loop (`offload_store::rules::migrate`) does not ask its engines for
    /// `Send` futures; connecting must stay spawnable on a multi-thread runtime all the same.
    #[test]
    fn connecting_is_send() {
        fn send<T: Send>(_: T) {}
        send(super::PgStore::connect(
            "postgres://nobody@127.0.0.1:1/none",
        ));
    }
}
