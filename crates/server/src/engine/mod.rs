//! The engine: routes jobs to pools, claims due jobs from the store, runs them, and records
//! their ends. It speaks no transport: HTTP, the line protocol and cron call it, and map its
//! [`EngineError`] to their own answers.
//!
//! Main loops (all tasks of [`Engine::start`]):
//! - the **dispatcher** (`dispatch.rs`): asks every pool for its free capacity, claims that many
//!   due jobs from the store (one call), starts them; sleeps until a submit wakes it or 100 ms
//!   pass (delayed and retried jobs become due with time);
//! - one **task per running job** (`dispatch.rs`): runs one attempt through its pool's
//!   [`Runner`](runner::Runner), forwards its progress (`progress.rs`), and sends a completion
//!   decided from its outcome (`complete.rs`);
//! - the **completer** (`complete.rs`): batches completions into one `Store::complete` (one
//!   transaction);
//! - the **log writer** (`log_writer.rs`): stores each attempt's captured stdout/stderr lines
//!   in batches, bounded per attempt; pool workers' lines reach it through one tap task per
//!   worker (`logs.rs`), which gives each line to the job the worker runs;
//! - the **lease keeper** (`lease.rs`): renews the leases of running jobs every lease/3,
//!   re-queues expired leases of other nodes, purges old finished jobs;
//! - the **heartbeat** (`nodes.rs`): writes this node's row of the node registry (load, running
//!   jobs, pools) every lease/3 (at most 5 s), reads its drain order back and follows it (a
//!   drain task per order: wait for the running jobs, hand back the rest at the deadline, exit
//!   or idle).
//!   re-queues expired leases of other nodes, purges old finished jobs and old history;
//! - the **history flusher** (`stats.rs`): adds this node's counts of the current minutes
//!   (`crate::history`) to the store every `[history] flush_ms`, one call for all.
//!
//! The other files: `submit.rs` (the one way in for new jobs: [`Engine::submit`]), `cancel.rs`
//! (cancelling a job, or the unfinished runs of a schedule), `route.rs`
//! (job name → pool) with `route_cache.rs` (the routes already resolved), `pools.rs` (starting
//! pools, their workers, hot reload), `runner.rs`
//! (the `pool | process` isolation, behind one type), `error.rs` ([`EngineError`]).
//!
//! The running-job table (`running`) is the only shared state: the dispatcher inserts, a job's
//! task removes, the API reads it to cancel.

pub(crate) mod attach;
mod cancel;
mod complete;
mod dispatch;
pub(crate) mod error;
mod lease;
mod log_writer;
pub(crate) mod logs;
mod nodes;
mod pools;
mod progress;
mod queues;
mod route;
pub(crate) mod route_cache;
mod runner;
mod stats;
mod submit;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use offload_process::JobsDir;
use offload_store::{Completion, JobId, Store};
use tokio::sync::{broadcast, mpsc, Notify};

use crate::config::ServeConfig;
use crate::events::{JobChange, ServerEvent};
use crate::metrics::Metrics;

pub(crate) use error::EngineError;
pub(crate) use pools::PoolEntry;
pub(crate) use submit::{Source, Submit};

/// The engine.
pub(crate) struct Engine {
    pub(crate) store: Arc<dyn Store>,
    cfg: ServeConfig,
    jobs_dir: JobsDir,
    pools: Mutex<HashMap<String, Arc<PoolEntry>>>,
    /// The jobs running here, with what stops each (`dispatch.rs`).
    running: Mutex<HashMap<JobId, dispatch::Running>>,
    /// Cancels that found no running entry: the job may be claimed by this node and not yet
    /// started (its claim committed, its task not yet in `running`). `start_job` looks here.
    early_cancels: Mutex<dispatch::EarlyCancels>,
    wake: Notify,
    pub(crate) events: broadcast::Sender<ServerEvent>,
    pub(crate) metrics: Metrics,
    /// This node's counts of the current minutes, flushed to the store's history (`stats.rs`).
    history: crate::history::History,
    /// Completions for the completer, each with the state change it announces once durable.
    completions: mpsc::UnboundedSender<(Completion, JobChange)>,
    /// One pool start at a time.
    pool_lock: tokio::sync::Mutex<()>,
    /// Admission control of every submit (`admission.rs`).
    admission: crate::admission::Admission,
    /// Job name → pool, for submits (`route_cache.rs`); on once the jobs folder is watched.
    pub(crate) routes: route_cache::RouteCache,
    /// This node's drain (`nodes.rs`).
    drain: nodes::Drain,
    /// Set once a drain asked to exit is over: the daemon stops.
    exit: tokio::sync::watch::Sender<bool>,
    /// Each attempt's stdout/stderr lines, captured and stored (`logs.rs`, `log_writer.rs`).
    pub(crate) logs: logs::JobLogs,
    /// Descriptors offered to the attempts that run here (`attach.rs`: line-protocol sockets).
    pub(crate) attachments: Arc<attach::Attachments>,
}

impl Engine {
    /// Builds the engine and starts its loops.
    pub(crate) async fn start(
        store: Arc<dyn Store>,
        cfg: ServeConfig,
        metrics: Metrics,
    ) -> Result<Arc<Self>, crate::error::ServeError> {
        let (events, _) = broadcast::channel(4096);
        let (ctx, crx) = mpsc::unbounded_channel();
        let logs = logs::JobLogs::start(Arc::clone(&store), cfg.limits.max_log_bytes_per_attempt);
        let engine = Arc::new(Self {
            store,
            logs,
            jobs_dir: JobsDir::new(&cfg.jobs),
            admission: crate::admission::Admission::new(cfg.limits.clone()),
            cfg,
            pools: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            early_cancels: Mutex::default(),
            wake: Notify::new(),
            events,
            metrics,
            history: crate::history::History::default(),
            completions: ctx,
            pool_lock: tokio::sync::Mutex::new(()),
            routes: route_cache::RouteCache::new(route_cache::ROUTE_CACHE_LIMIT),
            drain: nodes::Drain::default(),
            exit: tokio::sync::watch::channel(false).0,
            attachments: Arc::default(),
        });
        // First: a live node with this id refuses the start (before its jobs are recovered).
        engine.register().await?;
        // The configured rate and concurrency limits replace the stored ones (on a shared
        // store, for every node: give every node the same limits). The claim enforces them.
        let limits = crate::config::throttle::throttles(&engine.cfg)?;
        engine.store.set_limits(limits).await?;
        // A restarted single node: its running jobs were interrupted. Their attempt is counted.
        let recovered = engine.store.recover(Some(&engine.cfg.node)).await?;
        let expired = engine.store.recover(None).await?;
        if recovered + expired > 0 {
            tracing::info!(
                recovered,
                expired,
                "re-queued jobs that were running when the daemon stopped"
            );
        }
        // Pools declared in the file start now; the others on first use.
        let declared: Vec<String> = engine.cfg.pools.iter().map(|p| p.name.clone()).collect();
        for name in declared {
            engine
                .ensure_pool(&name, None)
                .await
                .map_err(|e| crate::error::ServeError::Pool {
                    pool: name.clone(),
                    reason: e.to_string(),
                })?;
        }
        // Pools that have waiting jobs from before the restart.
        let counts = engine.store.counts().await?;
        let mut waiting: Vec<String> = counts
            .iter()
            .filter(|((_, state), n)| **n > 0 && !state.is_terminal())
            .map(|((pool, _), _)| pool.clone())
            .collect();
        waiting.dedup();
        for pool in waiting {
            if let Err(e) = engine.ensure_pool(&pool, None).await {
                tracing::error!(pool, error = %e, "cannot start a pool that has waiting jobs");
            }
        }
        tokio::spawn(Arc::clone(&engine).dispatcher());
        tokio::spawn(Arc::clone(&engine).completer(crx));
        tokio::spawn(Arc::clone(&engine).lease_keeper());
        tokio::spawn(Arc::clone(&engine).heartbeat_loop());
        tokio::spawn(Arc::clone(&engine).history_flusher());
        Ok(engine)
    }

    pub(crate) fn config(&self) -> &ServeConfig {
        &self.cfg
    }

    /// Wakes the dispatcher (after a submit).
    pub(crate) fn notify(&self) {
        self.wake.notify_one();
    }

    /// Announces a job's state change on the event stream (SSE, long polls, line-protocol
    /// waits). Every `job` event goes through here.
    pub(crate) fn announce(&self, change: JobChange) {
        let _ = self.events.send(ServerEvent::Job(change));
    }

    /// Resolves once a drain that was asked to exit is over.
    pub(crate) async fn exit_asked(&self) {
        let mut rx = self.exit.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Stops every pool gracefully.
    pub(crate) async fn shutdown(&self, deadline: Duration) {
        // Held jobs never started: back to the queue now, not into pools that are stopping.
        self.drain
            .closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.hand_back_held();
        let waits: Vec<_> = self
            .pools()
            .iter()
            .map(|p| p.runner.shutdown(deadline))
            .collect();
        for w in waits {
            let _ = w.await;
        }
        // Jobs ended while the pools stopped: their counts go to the history too.
        self.flush_history().await;
    }
}
