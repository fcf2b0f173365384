//! Boots `offload serve` in the test process (`Daemon::start` on 127.0.0.1 port 0, a tempdir,
//! real workers) and talks to it: the one helper of the daemon's end-to-end tests and of the
//! attack suites (pueue's `tests/helper/daemon.rs` pattern, in-process).
//!
//! A [`Running`] daemon lives either on the test's own runtime ([`Running::start`]) or on a
//! runtime of its own ([`Running::boot`]): the latter can be reached from a plain `#[test]` with
//! blocking sockets, and can [`crash`](Running::crash): its runtime is dropped without a stop,
//! which is what SIGKILL does to the binary (no graceful step runs; the pools' drop SIGKILLs the
//! workers' process groups as `PR_SET_PDEATHSIG` would).
#![allow(dead_code, unreachable_pub)]

pub mod http;
pub mod lines;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use offload_server::{Daemon, FileConfig, ServeConfig};
use offload_store::{SqliteStore, Store};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::time::{timeout, Instant};

/// The longest any single step of these tests may take before it fails (a hang guard).
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The repository's example jobs (`examples/jobs`).
pub fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/jobs")
}

/// The job files of the line-protocol tests (`tests/fixtures/lines`).
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lines")
}

/// A configuration for `jobs` and `data` on 127.0.0.1 port 0, with `toml` applied as its
/// `offload.toml` (empty for none).
pub fn config(jobs: &Path, data: &Path, toml: &str) -> ServeConfig {
    let mut cfg = ServeConfig::new(jobs, data);
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    let file: FileConfig = toml::from_str(toml).unwrap();
    cfg.apply_file(file).unwrap();
    cfg
}

/// The SQLite store in `cfg.data`, as `offload serve` opens it by default.
pub fn sqlite(cfg: &ServeConfig) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open_with(&cfg.data, cfg.sqlite_options()).unwrap())
}

/// A daemon in this process.
pub struct Running {
    daemon: Option<Daemon>,
    /// The daemon's own runtime, when booted with [`Running::boot`].
    rt: Option<Runtime>,
    /// Where the HTTP API listens.
    pub http: SocketAddr,
    tcp: Option<SocketAddr>,
    udp: Option<SocketAddr>,
    _tmp: Option<tempfile::TempDir>,
}

impl Running {
    /// Starts one on the caller's runtime, on the SQLite store in `cfg.data`; keeps `tmp`.
    pub async fn start(tmp: tempfile::TempDir, cfg: ServeConfig) -> Self {
        let store = sqlite(&cfg);
        let mut d = Self::start_with(cfg, store).await;
        d._tmp = Some(tmp);
        d
    }

    /// Starts one on the caller's runtime, on `store`.
    pub async fn start_with(cfg: ServeConfig, store: Arc<dyn Store>) -> Self {
        Self::from(Daemon::start(cfg, store).await.unwrap(), None)
    }

    /// Starts one on a runtime of its own (two worker threads, as the binary has), on `store`.
    /// Callable from a plain `#[test]`; from an async test use [`Running::boot_async`].
    pub fn boot(cfg: ServeConfig, store: Arc<dyn Store>) -> Self {
        let rt = runtime();
        let daemon = rt.block_on(Daemon::start(cfg, store)).unwrap();
        Self::from(daemon, Some(rt))
    }

    /// [`Running::boot`] from an async test.
    pub async fn boot_async(cfg: ServeConfig, store: Arc<dyn Store>) -> Self {
        let rt = runtime();
        let daemon = rt.spawn(Daemon::start(cfg, store)).await.unwrap().unwrap();
        Self::from(daemon, Some(rt))
    }

    /// Boots on a runtime of its own what `start` makes there: a store opened on that runtime
    /// (its connections then die with it in a [`crash`](Running::crash)) and the tasks that feed
    /// the daemon.
    pub async fn boot_with<F, Fut>(start: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Daemon> + Send + 'static,
    {
        let rt = runtime();
        let daemon = rt.spawn(async move { start().await }).await.unwrap();
        Self::from(daemon, Some(rt))
    }

    fn from(daemon: Daemon, rt: Option<Runtime>) -> Self {
        Self {
            http: daemon.addr(),
            tcp: daemon.tcp_addr(),
            udp: daemon.udp_addr(),
            daemon: Some(daemon),
            rt,
            _tmp: None,
        }
    }

    /// Keeps `tmp` (the jobs and data folders) alive as long as the daemon.
    pub fn keep(mut self, tmp: tempfile::TempDir) -> Self {
        self._tmp = Some(tmp);
        self
    }

    /// `http://ADDR` of the HTTP API.
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Where the TCP line protocol listens (it must be on).
    pub fn tcp(&self) -> SocketAddr {
        self.tcp.expect("the daemon was started without --tcp")
    }

    /// Where UDP datagrams are received (it must be on).
    pub fn udp(&self) -> SocketAddr {
        self.udp.expect("the daemon was started without --udp")
    }

    /// The daemon's handle (what a shared store's other nodes announce goes through it).
    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("the daemon runs")
    }

    /// Stops it gracefully (as SIGTERM does to the binary), with a short grace.
    pub async fn stop(self) {
        self.stop_within(Duration::from_millis(200)).await;
    }

    /// Stops it gracefully: running jobs get `grace` to finish.
    pub async fn stop_within(mut self, grace: Duration) {
        let Some(d) = self.daemon.take() else { return };
        match self.rt.take() {
            None => d.stop(grace).await,
            Some(rt) => {
                rt.spawn(d.stop(grace)).await.unwrap();
                rt.shutdown_background();
            }
        }
    }

    /// Drains it and stops (what SIGTERM does to the binary): running jobs get `deadline`,
    /// then are handed back to the queue.
    pub async fn drain_and_stop(mut self, deadline: Duration) {
        let Some(d) = self.daemon.take() else { return };
        match self.rt.take() {
            None => d.drain_and_stop(deadline).await,
            Some(rt) => {
                rt.spawn(d.drain_and_stop(deadline)).await.unwrap();
                rt.shutdown_background();
            }
        }
    }

    /// [`Running::stop`] from a plain `#[test]` (the daemon must have been booted).
    pub fn stop_blocking(mut self) {
        let rt = self.rt.take().expect("a booted daemon");
        if let Some(d) = self.daemon.take() {
            rt.block_on(d.stop(Duration::from_millis(200)));
        }
        drop(rt);
    }

    /// Ends a booted daemon the way SIGKILL ends the binary: its runtime goes away with every
    /// task in it, no stop runs, no lease is given back and nothing is re-queued; then the
    /// daemon is dropped (the pools SIGKILL their workers, the store closes and unlocks its data
    /// folder). Returns when all of that is done.
    pub fn crash(mut self) {
        let rt = self.rt.take().expect("only a booted daemon can crash");
        let daemon = self.daemon.take();
        // Off the caller's runtime: waiting for a runtime to shut down blocks.
        std::thread::spawn(move || {
            rt.shutdown_timeout(Duration::from_secs(10));
            drop(daemon);
        })
        .join()
        .unwrap();
    }

    /// One HTTP/1.1 request: (status, body as JSON or as a string).
    pub async fn http(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut s = TcpStream::connect(self.http).await.unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.http,
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        timeout(DEADLINE, s.read_to_end(&mut raw))
            .await
            .expect("an HTTP answer in time")
            .unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, rest) = raw.split_once("\r\n\r\n").expect("an HTTP response");
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let v = serde_json::from_str(rest).unwrap_or(Value::String(rest.to_owned()));
        (status, v)
    }

    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        match self.http("GET", "/metrics", None).await {
            (200, Value::String(s)) => s,
            other => panic!("/metrics: {other:?}"),
        }
    }

    /// The value of one metric line (`name{labels}`), 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }

    /// Waits (bounded) until `series` satisfies `ok`.
    pub async fn metric_until(&self, series: &str, ok: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let v = self.metric(series).await;
            if ok(v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{series} stayed at {v}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `/healthz` answers 200.
    pub async fn healthy(&self) {
        assert_eq!(self.http("GET", "/healthz", None).await.0, 200);
    }

    /// A job submitted over HTTP that waits an hour (`scheduled`).
    pub async fn scheduled_job(&self, job: &str) -> String {
        let (st, v) = self
            .http(
                "POST",
                "/v1/jobs",
                Some(json!({"job": job, "params": {"data": "x"}, "delay_ms": 3_600_000})),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A test that failed before stopping it: let it go without blocking (allowed anywhere,
        // even on a runtime).
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A daemon on the example jobs that allows a schedule every second.
pub async fn cron_daemon() -> Running {
    let tmp = tempfile::tempdir().unwrap();
    let toml = "[limits]\nmin_cron_interval_ms = 1000\n";
    let cfg = config(&examples(), &tmp.path().join("data"), toml);
    Running::start(tmp, cfg).await
}
