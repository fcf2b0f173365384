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
//!
//! [job_env]                  # what jobs inherit of the daemon's environment (docs/security-jobs.md)
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
//! recycle_after_jobs = 500
//! max_rss_mb = 512
//! isolation = "pool"         # or "process": a fresh process per job
//!
//! [lines]                  # limits of the seed's TCP/UDP line protocol (docs/line-protocol.md)
//! max_request_bytes = 1048576
//! max_connections = 256
//! idle_timeout_ms = 10000
//! request_timeout_ms = 30000
//! end_gap_ms = 100
//! max_attempts = 1
//!
//! [[cron]]
//! name = "nightly-report"
//! cron = "0 3 * * *"
//! job = "report"
//! params = { kind = "daily" }
//! missed = "run_once"        # or "skip"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::error::ConfigError;

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
    /// Default retry backoff base.
    pub backoff_ms: Option<u64>,
    /// Recycle a worker after this many jobs.
    pub recycle_after_jobs: Option<u64>,
    /// Recycle a worker above this RSS.
    pub max_rss_mb: Option<u64>,
    /// Recycle a worker after this age.
    pub max_age_s: Option<u64>,
    /// Retire idle workers down to `min` after this long.
    pub idle_timeout_s: Option<u64>,
    /// `pool` or `process`.
    #[serde(default)]
    pub isolation: Isolation,
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
}

fn default_missed() -> String {
    "skip".into()
}

/// `[lines]` of `offload.toml`: limits of the seed's TCP/UDP line protocol
/// (`docs/line-protocol.md`). Every field is optional; see [`LineLimits`] for the defaults.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LinesSection {
    /// Largest request (TCP) or datagram (UDP), in bytes.
    pub max_request_bytes: Option<usize>,
    /// TCP connections served at once; more are answered `503:` and closed.
    pub max_connections: Option<usize>,
    /// A connection that sends nothing for this long is answered `408:` and closed.
    pub idle_timeout_ms: Option<u64>,
    /// The whole request must arrive within this time, else `408:`.
    pub request_timeout_ms: Option<u64>,
    /// Quiet time that ends a request from a client that neither half-closes nor ends its
    /// request with a newline.
    pub end_gap_ms: Option<u64>,
    /// Attempts of a line-protocol job when its pool does not set `max_attempts`.
    pub max_attempts: Option<u32>,
}

/// The limits of the seed's TCP/UDP line protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineLimits {
    /// Largest request or datagram (default 1 MiB; a datagram is at most 65,507 bytes anyway).
    pub max_request: usize,
    /// TCP connections served at once (default 256).
    pub max_connections: usize,
    /// Silence before the first byte that drops a connection (default 10 s).
    pub idle_timeout: Duration,
    /// Time for the whole request to arrive (default 30 s).
    pub request_timeout: Duration,
    /// Quiet time that ends a request without newline or half-close (default 100 ms).
    pub end_gap: Duration,
    /// Attempts of a line-protocol job whose pool does not set `max_attempts` (default 1: the
    /// client is waiting; a failure is answered `500:` at once).
    pub max_attempts: u32,
}

impl Default for LineLimits {
    fn default() -> Self {
        Self {
            max_request: 1 << 20,
            max_connections: 256,
            idle_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            end_gap: Duration::from_millis(100),
            max_attempts: 1,
        }
    }
}

impl LineLimits {
    fn apply(&mut self, s: LinesSection) {
        if let Some(n) = s.max_request_bytes {
            self.max_request = n.max(16);
        }
        if let Some(n) = s.max_connections {
            self.max_connections = n.max(1);
        }
        if let Some(ms) = s.idle_timeout_ms {
            self.idle_timeout = Duration::from_millis(ms.max(10));
        }
        if let Some(ms) = s.request_timeout_ms {
            self.request_timeout = Duration::from_millis(ms.max(10));
        }
        if let Some(ms) = s.end_gap_ms {
            self.end_gap = Duration::from_millis(ms.max(1));
        }
        if let Some(n) = s.max_attempts {
            self.max_attempts = n.max(1);
        }
    }
}

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
    /// The seed's TCP line protocol (`module:data`), off unless set.
    pub tcp: Option<String>,
    /// The seed's UDP datagrams (`module:data`, fire and forget), off unless set.
    pub udp: Option<String>,
    /// Limits of the line protocol.
    pub lines: Option<LinesSection>,
    /// The store: `sqlite` (default, in `data`) or a `postgres://` URL.
    pub store: Option<String>,
    // ---- bounds and least privilege (docs/security-jobs.md) ----
    /// A file holding the bearer token (its first line), so the token is never on argv.
    pub token_file: Option<PathBuf>,
    /// The largest `timeout_ms` a job may ask (default 7 days, at most 365 days).
    pub max_timeout_ms: Option<u64>,
    /// What jobs inherit of the daemon's environment.
    pub job_env: Option<JobEnvSection>,
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
    /// Largest request body.
    pub max_body: usize,
    /// This node's name (in leases and attempts).
    pub node: String,
    /// The seed's TCP line protocol listener, if any.
    pub tcp: Option<SocketAddr>,
    /// The seed's UDP listener, if any.
    pub udp: Option<SocketAddr>,
    /// Limits of the TCP/UDP line protocol.
    pub lines: LineLimits,
    /// The store URL: `None` for the embedded SQLite store in `data`.
    pub store: Option<String>,
    // ---- bounds and least privilege (docs/security-jobs.md) ----
    /// The largest `timeout_ms` a job may ask (default 7 days).
    pub max_timeout_ms: u64,
    /// What jobs inherit of the daemon's environment.
    pub job_env: JobEnvSection,
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
            max_body: 16 * 1024 * 1024,
            node: "local".into(),
            tcp: None,
            udp: None,
            lines: LineLimits::default(),
            store: None,
            max_timeout_ms: offload_store::limits::DEFAULT_MAX_TIMEOUT_MS,
            job_env: JobEnvSection::default(),
        }
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
            self.retention = crate::limits::hours("retention_hours", h)?;
        }
        if let Some(h) = file.idempotency_hours {
            self.idempotency_window = crate::limits::hours("idempotency_hours", h)?;
        }
        if let Some(ms) = file.max_timeout_ms {
            self.max_timeout_ms = ms;
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
            self.lines.apply(l);
        }
        if file.store.is_some() {
            self.store = file.store;
        }
        self.pools = file.pools;
        self.crons = file.crons;
        Ok(())
    }

    /// Checks what cannot be checked by types.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::limits::check_config(self)?;
        if !self.listen.ip().is_loopback() && self.token.is_none() {
            return Err(ConfigError::Invalid(format!(
                "{} is not a loopback address: set a token (--token or OFFLOAD_TOKEN)",
                self.listen
            )));
        }
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
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(pattern_matches("images/*", "images/resize"));
        assert!(!pattern_matches("images/*", "images/a/b"));
        assert!(pattern_matches("images/**", "images/a/b"));
        assert!(pattern_matches("*", "hello"));
        assert!(!pattern_matches("*", "a/b"));
        assert!(pattern_matches("**", "a/b"));
        assert!(pattern_matches("fib", "fib"));
        assert!(!pattern_matches("fib", "fibo"));
        assert!(pattern_matches("report-*", "report-daily"));
    }

    #[test]
    fn the_documented_file_parses() {
        let doc = include_str!("config.rs");
        let toml_text: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
            .collect::<Vec<_>>()
            .join("\n");
        let file: FileConfig = toml::from_str(&toml_text).unwrap();
        assert_eq!(file.pools.len(), 1);
        assert_eq!(file.crons[0].missed, "run_once");
    }

    #[test]
    fn the_example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/offload.toml");
        let file = FileConfig::load(&path).unwrap();
        let mut cfg = ServeConfig::new("jobs", ".offload");
        cfg.apply_file(file).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.pools.len(), 2);
        assert_eq!(cfg.crons.len(), 1);
    }

    #[test]
    fn a_public_address_needs_a_token() {
        let mut c = ServeConfig::new("jobs", ".offload");
        c.listen = "0.0.0.0:7070".parse().unwrap();
        assert!(c.validate().is_err());
        c.token = Some("t".into());
        assert!(c.validate().is_ok());
    }
}
