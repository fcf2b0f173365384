//! `offload serve`: the daemon.
//!
//! A durable job queue behind the [`Store`] trait, pools of workers per
//! job kind (or per `offload.toml` pool), the HTTP/JSON API of `docs/http-api.md` with SSE and
//! Prometheus metrics, cron schedules, and hot reload of job files. Start with [`Daemon::start`];
//! the main loops are listed in `engine/mod.rs`.
#![deny(missing_docs)]

mod admission;
mod backoff;
pub mod config;
mod cron;
mod dashboard;
mod engine;
pub mod error;
pub mod events;
mod handle;
mod history;
mod http;
mod job_env;
mod limits;
mod lines;
mod metrics;
mod reload;
mod workers;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use config::{FileConfig, ServeConfig};
pub use error::{ApiError, ConfigError, ServeError};
pub use handle::DaemonHandle;
pub use http::openapi_json;
use offload_store::Store;

/// A running daemon.
pub struct Daemon {
    addr: SocketAddr,
    engine: Arc<engine::Engine>,
    cron: Arc<cron::Scheduler>,
    server: tokio::task::JoinHandle<()>,
    lines: lines::Listeners,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _watcher: Option<reload::Watcher>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Daemon {
    /// Recovers interrupted jobs, starts the pools, the dispatcher, cron, the file watcher and
    /// the HTTP listener, and the seed's TCP/UDP line protocol when asked (`--tcp`, `--udp`).
    ///
    /// # Errors
    ///
    /// [`ServeError`] for a bad configuration, a storage failure, a pool that cannot start, or
    /// an address that cannot be bound.
    pub async fn start(cfg: ServeConfig, store: Arc<dyn Store>) -> Result<Self, ServeError> {
        cfg.validate()?;
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| ServeError::Bind {
                addr: cfg.listen.to_string(),
                reason: e.to_string(),
            })?;
        let addr = listener.local_addr()?;
        let line_sockets = lines::Bound::bind(cfg.tcp, cfg.udp).await?;
        let max_body = cfg.max_body;
        let limits = cfg.http.clone();
        let max_connections =
            http::listen::fit_connections(limits.max_connections, http::listen::raise_nofile());
        let token = cfg.token.clone();
        let crons = cfg.crons.clone();
        let jobs_dir = cfg.jobs.clone();
        let engine = engine::Engine::start(store, cfg, metrics::Metrics::new()).await?;
        let scheduler = cron::Scheduler::start(Arc::clone(&engine), &crons).await?;
        let watcher = match reload::Watcher::start(&jobs_dir, Arc::clone(&engine)) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, dir = %jobs_dir.display(), "hot reload is off: cannot watch the jobs folder");
                None
            }
        };
        let lines = lines::Listeners::start(line_sockets, Arc::clone(&engine))?;
        let app = Arc::new(http::App::new(
            Arc::clone(&engine),
            Arc::clone(&scheduler),
            token,
            limits.clone(),
            max_body,
        ));
        let router = dashboard::router(Arc::clone(&app)).merge(http::router(app));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let metrics = engine.metrics.clone();
        let server = tokio::spawn(async move {
            http::listen::serve(listener, router, &limits, max_connections, metrics, stop_rx).await;
        });
        tracing::info!(%addr, max_connections, "offload serve is listening");
        Ok(Self {
            addr,
            engine,
            cron: scheduler,
            server,
            lines,
            stop: Some(stop_tx),
            _watcher: watcher,
        })
    }

    /// Where the API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle for what a shared store's other nodes announce (see [`DaemonHandle`]).
    pub fn handle(&self) -> DaemonHandle {
        DaemonHandle {
            engine: Arc::clone(&self.engine),
            cron: Arc::clone(&self.cron),
        }
    }

    /// Where the seed's TCP line protocol listens, when it is on.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.lines.tcp_addr()
    }

    /// Where the seed's UDP datagrams are received, when on.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.lines.udp_addr()
    }

    /// Runs until `signal` resolves (then drains for `deadline` and stops, see
    /// [`drain_and_stop`](Self::drain_and_stop)) or until a drain asked to exit is over (`POST
    /// /v1/nodes/{id}/drain` with `then: exit`; then stops).
    pub async fn run_until(self, signal: impl Future<Output = ()>, deadline: Duration) {
        let engine = Arc::clone(&self.engine);
        tokio::select! {
            () = signal => self.drain_and_stop(deadline).await,
            () = engine.exit_asked() => {
                tracing::info!("drained as asked: exiting");
                self.stop(Duration::from_secs(1)).await;
            }
        }
    }

    /// Drains this node (what SIGTERM does): claims nothing more, lets running jobs finish for
    /// `deadline`, hands back those still running (re-queued at once, their attempt not
    /// counted), then [`stop`](Self::stop)s. The node registry shows it draining, then stopped.
    pub async fn drain_and_stop(self, deadline: Duration) {
        self.engine.drain_here(deadline).await;
        self.stop(Duration::from_secs(1)).await;
    }

    /// Stops accepting requests, lets running jobs finish for `grace`, then stops the workers
    /// and marks the node `stopped` in the registry. Jobs still running are left `running` in
    /// the store and re-queued at the next start (or by another node once their lease ends).
    pub async fn stop(mut self, grace: Duration) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.lines.stop().await;
        self.engine.shutdown(grace).await;
        self.engine.stopped().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.server).await;
    }
}
