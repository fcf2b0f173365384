//! The daemon's configuration: command-line values over an optional `offload.toml`.
//!
//! ```toml
//! listen = "127.0.0.1:7070"
//! data = ".offload"
//! jobs = "jobs"
//! # token = "..."            # or OFFLOAD_TOKEN; required on a non-loopback address
//! # token_file = "/run/secrets/offload-token"   # or --token-file: the token, kept off argv
//! lease_ms = 30000           # 100 ms ..= 1 day
//! retention_hours = 168      # ..= 87600 (10 years)
//! idempotency_hours = 24     # ..= 8760 (1 year)
//! max_timeout_ms = 604800000 # the largest timeout_ms a job may ask: 7 days (..= 365 days)
//! # node_id = "worker-1"     # or --node-id; default: kept in <data>/node-id (docs/multi-node.md)
//! drain_deadline_ms = 10000  # SIGTERM drains: running jobs get this long, then are handed back
//! sqlite_cache_mb = 2        # 1..=1024: SQLite's page cache per connection (6 connections)
//!
//! [job_env]                  # what jobs inherit of the daemon's environment (docs/security.md)
//! allow = ["AWS_REGION", "MYAPP_*"]   # added to the default allow-list
//! secret = ["DATABASE_URL"]           # never passed, nor any variable holding their values
//!
//! [[pool]]
//! name = "images"
//! jobs = ["images/*"]        # job-name patterns: `*` within a segment, `**` across
//! min = 1
//! max = 4
//! concurrency = 1
//! algorithm = "p2c"
//! timeout_ms = 60000
//! max_attempts = 3
//! backoff_ms = 1000
//! # backoff = { kind = "exponential", delay_ms = 500, max_delay_ms = 60000, jitter = true }
//! recycle_after_jobs = 500
//! max_rss_mb = 512
//! max_heap_mb = 256          # from the workers' pongs (Node heapUsed, Python/Rust C heap)
//! max_cpu_percent = 90       # with cpu_samples = 30: 30 s in a row above 90 % → recycle
//! ping_interval_ms = 5000    # 0: never ping; an idle worker silent for ping_timeout_ms is replaced
//! isolation = "pool"         # or "process": a fresh process per job
//! rate = "100/1m"            # at most 100 starts a minute, on every node (config/throttle.rs)
//! max_running = 8            # at most 8 of its jobs running at once, on every node
//!
//! [lines]                  # limits of the seed's TCP/UDP line protocol (docs/line-protocol.md)
//! max_request_bytes = 1048576
//! max_connections = 256
//! idle_timeout_ms = 10000
//! request_timeout_ms = 30000
//! end_gap_ms = 100
//! max_attempts = 1
//! allow = []                 # networks that may use it beyond loopback: ["10.0.0.0/8", …]
//! max_waits = 128            # requests waiting for a job's end at once; more: 503
//! max_wait_ms = 300000       # a wait ends after this: 504 (the job goes on)
//! udp_rate_per_s = 100       # datagrams per second per source address (token bucket)
//! udp_burst = 200            # the bucket's size
//! udp_max_queued = 10000     # UDP-submitted jobs not yet ended; more datagrams are dropped
//!
//! [limits]                   # admission control
//! max_queued_per_pool = 100000
//! max_queued_total = 1000000
//! max_cron_schedules = 1000
//! min_cron_interval_ms = 60000
//! max_workers_per_pool = 64         # ..= 1024 (offload_pool::MAX_WORKERS)
//! max_log_bytes_per_attempt = 65536 # a job attempt's stdout/stderr kept (..= 16 MiB); the rest cut
//! max_log_attempts_per_job = 10     # a retry keeps the logs of the job's last 10 attempts (1..=1000)
//!
//! [http]                   # limits of the HTTP API (docs/http-api.md, docs/security.md)
//! allowed_hosts = []         # Host names accepted besides loopback names and IP literals
//! header_timeout_ms = 10000  # request head (also the keep-alive idle timeout)
//! body_timeout_ms = 30000    # whole request body
//! max_connections = 512      # beyond: 503 at once (a few extra answer /healthz only)
//! max_sse_subscribers = 64   # open GET /v1/events streams
//! max_long_polls = 256       # GET /v1/jobs/{id}/result?wait= at once
//! sse_buffer_bytes = 1048576 # per subscriber; beyond, `event: lagged`
//! max_event_bytes = 65536    # a larger progress value or job event becomes a marker
//! max_params_bytes = 1048576 # params of a job or schedule (at most the frame limit)
//! max_body_bytes = 16777216  # a request body
//!
//! [history]                # per-minute job history: GET /v1/stats, the dashboard's charts
//! retention_days = 7         # 1..=365
//! flush_ms = 5000            # 100..=60000: what a crash may lose of the history
//!
//! [[cron]]
//! name = "nightly-report"
//! cron = "0 3 * * *"
//! job = "report"
//! params = { kind = "daily" }
//! missed = "run_once"        # or "skip"
//! overlap = "skip"           # or "queue": no tick while its previous run is unfinished
//! pause_after_failures = 5   # pause after 5 failed runs in a row (absent: never)
//! timezone = "Europe/Berlin" # IANA name; absent: UTC
//!
//! [job."report"]             # per job name (exact): what a submit of it does not say
//! backoff = { kind = "list", delays_ms = [1000, 5000, 30000] }
//! keep_result_ms = 3600000   # a succeeded run is purged an hour after it ended
//! key_ttl_ms = 600000        # its idempotency keys' window
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::error::ConfigError;

mod http;
pub use http::{HttpLimits, HttpSection};

/// How jobs of a pool are isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Resident workers (ChildPool).
    #[default]
    Pool,
    /// A fresh process per job (ChildJob).
    Process,
}

/// One `[[pool]]` of `offload.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PoolSection {
    /// The pool's name.
    pub name: String,
    /// Job-name patterns routed to it (first matching pool wins).
    #[serde(default)]
    pub jobs: Vec<String>,
    /// `node`, `python` or `native` (default: from the first matching job file).
    pub kind: Option<String>,
    /// For native pools: the worker program (default: the job file itself).
    pub program: Option<PathBuf>,
    /// Workers kept.
    pub min: Option<usize>,
    /// Workers at most.
    pub max: Option<usize>,
    /// Jobs per worker.
    pub concurrency: Option<u32>,
    /// Balancing algorithm (the seed's names, `p2c`, …).
    pub algorithm: Option<String>,
    /// Default per-attempt timeout.
    pub timeout_ms: Option<u64>,
    /// Default attempts.
    pub max_attempts: Option<u32>,
    /// Default retry backoff base (`exponential`, no jitter).
    pub backoff_ms: Option<u64>,
    /// Default retry backoff, any kind (over `backoff_ms`):
    /// `backoff = { kind = "exponential", delay_ms = 500, max_delay_ms = 60000, jitter = true }`.
    pub backoff: Option<offload_api::Backoff>,
    /// Recycle a worker after this many jobs.
    pub recycle_after_jobs: Option<u64>,
    /// Recycle a worker above this RSS.
    pub max_rss_mb: Option<u64>,
    /// Recycle a worker after this age.
    pub max_age_s: Option<u64>,
    /// Recycle a worker whose heap (as its last `pong` reported) is above this.
    pub max_heap_mb: Option<u64>,
    /// Recycle a worker whose process tree used more than this CPU (percent of one core,
    /// 1..=10000) for `cpu_samples` health samples (1 s apart) in a row.
    pub max_cpu_percent: Option<u32>,
    /// Samples in a row above `max_cpu_percent` (default 1, at most 1000).
    pub cpu_samples: Option<u32>,
    /// Ping idle workers this often (default 5000; 0: never; else at least 10).
    pub ping_interval_ms: Option<u64>,
    /// Replace a worker whose `pong` takes longer (default 10000; at least 10).
    pub ping_timeout_ms: Option<u64>,
    /// Retire idle workers down to `min` after this long.
    pub idle_timeout_s: Option<u64>,
    /// `pool` or `process`.
    #[serde(default)]
    pub isolation: Isolation,
    /// At most this many starts of the pool's jobs per period, on every node (`"100/1m"` or
    /// `{ limit, period_ms }`; `config/throttle.rs`).
    pub rate: Option<throttle::RateSpec>,
    /// At most this many of the pool's jobs running at once, on every node (`concurrency` is
    /// the jobs of one worker).
    pub max_running: Option<i64>,
    /// Jobs claimed beyond the free slots (`isolation = "pool"` only): held by this node,
    /// `running` in the store, each started the moment a slot frees, without waiting for a
    /// claim (default 0; at most 3 × `max` × `concurrency`). See `docs/http-api.md`.
    pub claim_ahead: Option<usize>,
}

impl PoolSection {
    /// Jobs the pool runs at once: `max` workers × `concurrency`.
    pub fn capacity(&self) -> usize {
        self.max.unwrap_or(2).max(1) * self.concurrency.unwrap_or(1).max(1) as usize
    }

    /// The most [`claim_ahead`](Self::claim_ahead) may be: 3 × its capacity; none for a
    /// process per job.
    pub fn max_claim_ahead(&self) -> usize {
        match self.isolation {
            Isolation::Pool => self.capacity().saturating_mul(3),
            Isolation::Process => 0,
        }
    }

    /// Jobs the dispatcher claims beyond the free slots (see [`claim_ahead`](Self::claim_ahead)).
    pub fn claim_ahead(&self) -> usize {
        match self.isolation {
            Isolation::Pool => self.claim_ahead.unwrap_or(0).min(self.max_claim_ahead()),
            Isolation::Process => 0,
        }
    }
}

/// One `[[cron]]` of `offload.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CronSection {
    /// Unique name.
    pub name: String,
    /// Expression (croner syntax, 5 or 6 fields).
    pub cron: String,
    /// The job.
    pub job: String,
    /// Its params.
    #[serde(default)]
    pub params: Value,
    /// `skip` (default) or `run_once`.
    #[serde(default = "default_missed")]
    pub missed: String,
    /// `skip` (default: no tick while a run of it is unfinished) or `queue`.
    #[serde(default = "default_overlap")]
    pub overlap: String,
    /// Pause after this many consecutive failed runs (1..=1000; absent: never).
    #[serde(default)]
    pub pause_after_failures: Option<u32>,
    /// The IANA time zone its expression is read in (absent: UTC).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Each run is due up to this many ms after its tick, at random (0..=3,600,000; absent:
    /// at the tick).
    #[serde(default)]
    pub jitter_ms: Option<u64>,
    /// After a run that ended dead, ticks fire nothing for this long, doubling with each
    /// consecutive failure (1..=86,400,000; absent: no wait).
    #[serde(default)]
    pub failure_backoff_ms: Option<u64>,
    /// The longest such wait (absent: `failure_backoff_ms` × 64, at most a day).
    #[serde(default)]
    pub failure_backoff_max_ms: Option<u64>,
}

fn default_overlap() -> String {
    "skip".into()
}

fn default_missed() -> String {
    "skip".into()
}

// `[lines]` and `[limits]`, in their own files.
mod history;
mod jobs;
mod limits;
mod lines;
mod numbers;
pub(crate) mod throttle;

pub use history::{HistoryConfig, HistorySection};
pub use jobs::{JobSection, JobSections};
pub use limits::{Limits, LimitsSection};
pub use lines::{LineLimits, LinesSection, Network};

/// The file `offload.toml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listen address.
    pub listen: Option<String>,
    /// Data folder.
    pub data: Option<PathBuf>,
    /// Jobs folder.
    pub jobs: Option<PathBuf>,
    /// Bearer token.
    pub token: Option<String>,
    /// Lease length.
    pub lease_ms: Option<u64>,
    /// Keep finished jobs this long.
    pub retention_hours: Option<u64>,
    /// Idempotency window.
    pub idempotency_hours: Option<u64>,
    /// Pools.
    #[serde(default, rename = "pool")]
    pub pools: Vec<PoolSection>,
    /// Cron schedules.
    #[serde(default, rename = "cron")]
    pub crons: Vec<CronSection>,
    /// Per job name: `[job."<name>"]`.
    #[serde(default)]
    pub job: JobSections,
    /// The seed's TCP line protocol (`module:data`), off unless set.
    pub tcp: Option<String>,
    /// The seed's UDP datagrams (`module:data`, fire and forget), off unless set.
    pub udp: Option<String>,
    /// Limits of the line protocol.
    pub lines: Option<LinesSection>,
    /// Admission control.
    pub limits: Option<LimitsSection>,
    /// The store: `sqlite` (default, in `data`) or a `postgres://` URL.
    pub store: Option<String>,
    /// Limits of the HTTP API.
    pub http: Option<HttpSection>,
    /// The job history.
    pub history: Option<HistorySection>,
    // ---- bounds and least privilege (docs/security.md) ----
    /// A file holding the bearer token (its first line), so the token is never on argv.
    pub token_file: Option<PathBuf>,
    /// The largest `timeout_ms` a job may ask (default 7 days, at most 365 days).
    pub max_timeout_ms: Option<u64>,
    /// This node's id in the node registry and in leases (`--node-id`).
    pub node_id: Option<String>,
    /// How long SIGTERM lets running jobs finish before handing them back, in ms (..= 1 day).
    pub drain_deadline_ms: Option<u64>,
    /// What jobs inherit of the daemon's environment.
    pub job_env: Option<JobEnvSection>,
    /// SQLite's page cache per connection, in MiB (default 2, 1..=1024).
    pub sqlite_cache_mb: Option<u32>,
}

/// `[job_env]` of `offload.toml`: jobs start from an allow-listed environment (see
/// `offload_process::EnvAllowList`); the daemon's token and store URL never reach them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JobEnvSection {
    /// Names (or `PREFIX*` patterns) added to the default allow-list.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Names (or `PREFIX*` patterns) never passed; the values of these variables in the
    /// daemon's environment are also removed from any other variable.
    #[serde(default)]
    pub secret: Vec<String>,
}

/// Reads a token file: its first line, trimmed. Warns when others may read the file.
///
/// # Errors
///
/// [`ConfigError::Read`] when it cannot be read, [`ConfigError::Invalid`] when it is empty.
pub fn read_token_file(path: &Path) -> Result<String, ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        return Err(ConfigError::Invalid(format!(
            "token file {} is empty",
            path.display()
        )));
    }
    if let Ok(meta) = path.metadata() {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "the token file is readable by other users; `chmod 600` it");
        }
    }
    Ok(token)
}

impl FileConfig {
    /// Reads `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the file and the problem.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }
}

/// Everything the daemon runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// The data folder (the SQLite database lives here).
    pub data: PathBuf,
    /// The jobs folder.
    pub jobs: PathBuf,
    /// Bearer token.
    pub token: Option<String>,
    /// Lease of a claimed job.
    pub lease: Duration,
    /// Finished jobs are purged after this.
    pub retention: Duration,
    /// Duplicate submits within this window return the first job.
    pub idempotency_window: Duration,
    /// Pools.
    pub pools: Vec<PoolSection>,
    /// Cron schedules from the file.
    pub crons: Vec<CronSection>,
    /// Per job name: `[job."<name>"]` (backoff, …).
    pub job_sections: JobSections,
    /// Largest request body.
    pub max_body: usize,
    /// This node's name (in leases and attempts).
    pub node: String,
    /// This node's id from the file (`node_id`); the binary falls back to `<data>/node-id`.
    pub node_id: Option<String>,
    /// How long SIGTERM lets running jobs finish before handing them back (default 10 s).
    pub drain_deadline: Duration,
    /// The seed's TCP line protocol listener, if any.
    pub tcp: Option<SocketAddr>,
    /// The seed's UDP listener, if any.
    pub udp: Option<SocketAddr>,
    /// Limits of the TCP/UDP line protocol.
    pub lines: LineLimits,
    /// Admission control.
    pub limits: Limits,
    /// The store URL: `None` for the embedded SQLite store in `data`.
    pub store: Option<String>,
    /// Limits of the HTTP API (`[http]`).
    pub http: HttpLimits,
    /// The job history (`[history]`).
    pub history: HistoryConfig,
    // ---- bounds and least privilege (docs/security.md) ----
    /// The largest `timeout_ms` a job may ask (default 7 days).
    pub max_timeout_ms: u64,
    /// What jobs inherit of the daemon's environment.
    pub job_env: JobEnvSection,
    /// SQLite's page cache per connection, in MiB (default 2): the embedded store holds a
    /// writer, 4 readers and a checkpointer, so its caches stay under 6 × this.
    pub sqlite_cache_mb: u32,
}

impl ServeConfig {
    /// Defaults for `jobs` and `data`, listening on 127.0.0.1:7070.
    pub fn new(jobs: impl Into<PathBuf>, data: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            data: data.into(),
            jobs: jobs.into(),
            token: None,
            lease: Duration::from_secs(30),
            retention: Duration::from_secs(7 * 24 * 3600),
            idempotency_window: Duration::from_secs(24 * 3600),
            pools: Vec::new(),
            crons: Vec::new(),
            job_sections: JobSections::new(),
            max_body: 16 * 1024 * 1024,
            node: "local".into(),
            node_id: None,
            drain_deadline: Duration::from_secs(10),
            tcp: None,
            udp: None,
            lines: LineLimits::default(),
            limits: Limits::default(),
            store: None,
            http: HttpLimits::default(),
            history: HistoryConfig::default(),
            max_timeout_ms: offload_store::limits::DEFAULT_MAX_TIMEOUT_MS,
            job_env: JobEnvSection::default(),
            sqlite_cache_mb: numbers::DEFAULT_SQLITE_CACHE_MB,
        }
    }

    /// How the embedded SQLite store opens with this configuration: `sqlite_cache_mb` per
    /// connection, the logs of `[limits] max_log_attempts_per_job` attempts kept by a retry.
    pub fn sqlite_options(&self) -> offload_store::SqliteOptions {
        offload_store::SqliteOptions::default()
            .with_cache_kib(self.sqlite_cache_mb.saturating_mul(1024))
            .with_log_attempts(self.limits.max_log_attempts_per_job)
    }

    /// Applies a file's values (the command line applies after, over them).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for a bad listen address.
    pub fn apply_file(&mut self, file: FileConfig) -> Result<(), ConfigError> {
        if let Some(l) = file.listen {
            self.listen = l
                .parse()
                .map_err(|e| ConfigError::Invalid(format!("listen {l:?}: {e}")))?;
        }
        if let Some(d) = file.data {
            self.data = d;
        }
        if let Some(j) = file.jobs {
            self.jobs = j;
        }
        if file.token.is_some() && file.token_file.is_some() {
            return Err(ConfigError::Invalid(
                "give token or token_file, not both".into(),
            ));
        }
        if file.token.is_some() {
            self.token = file.token;
        }
        if let Some(path) = &file.token_file {
            self.token = Some(read_token_file(path)?);
        }
        if let Some(ms) = file.lease_ms {
            self.lease = Duration::from_millis(ms.max(100));
        }
        if let Some(h) = file.retention_hours {
            self.retention = numbers::hours("retention_hours", h)?;
        }
        if let Some(mb) = file.sqlite_cache_mb {
            self.sqlite_cache_mb = numbers::sqlite_cache_mb(mb)?;
        }
        if let Some(h) = file.idempotency_hours {
            self.idempotency_window = numbers::hours("idempotency_hours", h)?;
        }
        if let Some(ms) = file.max_timeout_ms {
            self.max_timeout_ms = ms;
        }
        if file.node_id.is_some() {
            self.node_id = file.node_id;
        }
        if let Some(ms) = file.drain_deadline_ms {
            if ms > offload_store::nodes::MAX_DRAIN_DEADLINE_MS {
                return Err(ConfigError::Invalid(format!(
                    "drain_deadline_ms {ms} is out of range: 0..={} (1 day)",
                    offload_store::nodes::MAX_DRAIN_DEADLINE_MS
                )));
            }
            self.drain_deadline = Duration::from_millis(ms);
        }
        if let Some(env) = file.job_env {
            self.job_env = env;
        }
        let addr = |what: &str, v: String| -> Result<SocketAddr, ConfigError> {
            v.parse()
                .map_err(|e| ConfigError::Invalid(format!("{what} {v:?}: {e}")))
        };
        if let Some(t) = file.tcp {
            self.tcp = Some(addr("tcp", t)?);
        }
        if let Some(u) = file.udp {
            self.udp = Some(addr("udp", u)?);
        }
        if let Some(l) = file.lines {
            self.lines.apply(l)?;
        }
        if let Some(l) = file.limits {
            self.limits.apply(l);
        }
        if file.store.is_some() {
            self.store = file.store;
        }
        if let Some(h) = file.http {
            self.http.apply(h, &mut self.max_body)?;
        }
        if let Some(h) = file.history {
            self.history.apply(h);
        }
        self.pools = file.pools;
        self.crons = file.crons;
        self.job_sections = file.job;
        Ok(())
    }

    /// Checks what cannot be checked by types.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        numbers::check_config(self)?;
        jobs::check(&self.job_sections)?;
        throttle::throttles(self)?;
        if !self.listen.ip().is_loopback() && self.token.is_none() {
            return Err(ConfigError::Invalid(format!(
                "{} is not a loopback address: set a token (--token or OFFLOAD_TOKEN)",
                self.listen
            )));
        }
        self.validate_lines()?;
        self.validate_limits()?;
        let mut names = std::collections::HashSet::new();
        for p in &self.pools {
            if !names.insert(p.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "pool {:?} is declared twice",
                    p.name
                )));
            }
            if let Some(k) = &p.kind {
                if !matches!(k.as_str(), "node" | "python" | "native") {
                    return Err(ConfigError::Invalid(format!(
                        "pool {:?}: kind {k:?} is not node, python or native",
                        p.name
                    )));
                }
            }
        }
        Ok(())
    }
}

impl ServeConfig {
    /// The line protocol has no credential: beyond loopback, or beside a token (which says
    /// the HTTP API is meant to be protected), it needs the explicit `allow` opt-in.
    fn validate_lines(&self) -> Result<(), ConfigError> {
        if !self.lines.allow.is_empty() {
            return Ok(());
        }
        for (what, addr) in [("tcp", self.tcp), ("udp", self.udp)] {
            let Some(addr) = addr else { continue };
            if !addr.ip().is_loopback() {
                return Err(ConfigError::LinesNeedAllow {
                    reason: format!("{what} {addr} is not a loopback address"),
                });
            }
            if self.token.is_some() {
                return Err(ConfigError::LinesNeedAllow {
                    reason: format!(
                        "({what} {addr}) would run jobs without the token the HTTP API requires"
                    ),
                });
            }
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        for p in &self.pools {
            let max = p.max.unwrap_or(0).max(p.min.unwrap_or(0));
            if max > l.max_workers_per_pool {
                return Err(ConfigError::OverLimit {
                    what: format!("pool {:?} has max = {max} workers", p.name),
                    limit: "max_workers_per_pool",
                    value: l.max_workers_per_pool.to_string(),
                });
            }
        }
        if self.crons.len() > l.max_cron_schedules {
            return Err(ConfigError::OverLimit {
                what: format!("{} [[cron]] schedules", self.crons.len()),
                limit: "max_cron_schedules",
                value: l.max_cron_schedules.to_string(),
            });
        }
        for c in &self.crons {
            crate::cron::checks::expression(&c.cron, l.min_cron_interval)
                .map_err(|e| ConfigError::Invalid(format!("[[cron]] {:?}: {e}", c.name)))?;
            crate::cron::checks::policy(&c.overlap, c.pause_after_failures, c.timezone.as_deref())
                .map_err(|e| ConfigError::Invalid(format!("[[cron]] {:?}: {e}", c.name)))?;
        }
        Ok(())
    }
}

/// Whether `name` matches `pattern`: `*` matches within one `/` segment, `**` across segments.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = &p[2..];
                (0..=n.len()).any(|i| go(rest, &n[i..]))
            }
            Some(b'*') => {
                let rest = &p[1..];
                let seg_end = n.iter().position(|&c| c == b'/').unwrap_or(n.len());
                (0..=seg_end).any(|i| go(rest, &n[i..]))
            }
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests;
