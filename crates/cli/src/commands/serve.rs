//! `offload serve`: the daemon, on the embedded SQLite store, or on a PostgreSQL database that
//! several nodes share (`--store postgres://…`, see `docs/multi-node.md`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use offload_server::{Daemon, FileConfig, ServeConfig};
use offload_store::{SqliteStore, Store};
use offload_store_pg::{PgOptions, PgStore};

use crate::exit;

/// Arguments of `offload serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The jobs folder.
    #[arg(long, env = "OFFLOAD_JOBS")]
    jobs: Option<PathBuf>,
    /// The data folder (the SQLite database).
    #[arg(long, env = "OFFLOAD_DATA")]
    data: Option<PathBuf>,
    /// Listen address of the HTTP API.
    #[arg(long, env = "OFFLOAD_LISTEN")]
    listen: Option<SocketAddr>,
    /// Bearer token (required on a non-loopback address). Prefer `--token-file` or the
    /// OFFLOAD_TOKEN variable: a value on the command line is visible to every local user.
    #[arg(long, env = "OFFLOAD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file holding the bearer token (its first line): keeps the token off argv.
    #[arg(long, env = "OFFLOAD_TOKEN_FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// The configuration file (default: ./offload.toml when it exists).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Lease of a running job, e.g. `30s` (a job whose node stops renewing it runs again).
    #[arg(long, value_parser = humantime::parse_duration)]
    lease: Option<Duration>,
    /// Also speak the seed's TCP line protocol (`module:data`) on this address.
    #[arg(long, env = "OFFLOAD_TCP")]
    tcp: Option<SocketAddr>,
    /// Also accept the seed's UDP datagrams (`module:data`, fire and forget) on this address.
    #[arg(long, env = "OFFLOAD_UDP")]
    udp: Option<SocketAddr>,
    /// Networks that may use the line protocol beyond loopback, e.g. `10.0.0.0/8,192.168.1.7`:
    /// the explicit opt-in for a non-loopback `--tcp`/`--udp`, or for the line protocol (which
    /// has no credential) beside `--token`. Peers outside are closed/dropped.
    #[arg(long, env = "OFFLOAD_LINES_ALLOW", value_delimiter = ',')]
    lines_allow: Vec<offload_server::config::Network>,
    /// Requests of the line protocol waiting for a job's end at once (more: `503:`).
    #[arg(long)]
    lines_max_waits: Option<usize>,
    /// The longest wait of a line-protocol request for its job, e.g. `5m` (then `504:`).
    #[arg(long, value_parser = humantime::parse_duration)]
    lines_max_wait: Option<Duration>,
    /// The store: omit for the embedded SQLite store in `--data`, or a `postgres://` URL that
    /// several nodes share.
    #[arg(long, env = "OFFLOAD_STORE")]
    store: Option<String>,
    /// A `Host` name the HTTP API answers to besides `localhost` and IP addresses (repeatable;
    /// adds to `[http] allowed_hosts`), e.g. the name a reverse proxy forwards.
    #[arg(long = "allowed-host", value_name = "NAME")]
    allowed_hosts: Vec<String>,
    /// Connections the HTTP API serves at once (`[http] max_connections`, default 512).
    #[arg(long)]
    max_connections: Option<usize>,
    /// SIGTERM drains the node: running jobs may finish for this long, then are handed back to
    /// the queue (`drain_deadline_ms` in offload.toml; default 10s). A second signal exits at
    /// once; a stop unfinished 15s after this deadline exits anyway (code 70).
    #[arg(long, value_parser = humantime::parse_duration)]
    grace: Option<Duration>,
    /// This node's id in the node registry and in leases (`node_id` in offload.toml; default:
    /// kept in `<data>/node-id`). Letters, digits, `.`, `_`, `-`, `:`; a live node's id is refused.
    #[arg(long, env = "OFFLOAD_NODE_ID")]
    node_id: Option<String>,
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<i32> {
    let mut cfg = ServeConfig::new("jobs", ".offload");
    let file = match &args.config {
        Some(path) => Some(path.clone()),
        None => Some(PathBuf::from("offload.toml")).filter(|p| p.exists()),
    };
    if let Some(path) = &file {
        cfg.apply_file(FileConfig::load(path)?)?;
    }
    if let Some(j) = args.jobs {
        cfg.jobs = j;
    }
    if let Some(d) = args.data {
        cfg.data = d;
    }
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if args.token.is_some() {
        if token_on_argv() {
            tracing::warn!(
                "--token on the command line is visible to every local user (ps, /proc): use \
                 --token-file, token_file in offload.toml, or the OFFLOAD_TOKEN variable"
            );
        }
        cfg.token = args.token;
    }
    if let Some(path) = &args.token_file {
        cfg.token = Some(offload_server::config::read_token_file(path)?);
    }
    if let Some(l) = args.lease {
        cfg.lease = l;
    }
    if args.tcp.is_some() {
        cfg.tcp = args.tcp;
    }
    if args.udp.is_some() {
        cfg.udp = args.udp;
    }
    if !args.lines_allow.is_empty() {
        cfg.lines.allow = args.lines_allow;
    }
    if let Some(n) = args.lines_max_waits {
        cfg.lines.max_waits = n.max(1);
    }
    if let Some(d) = args.lines_max_wait {
        cfg.lines.max_wait = d;
    }
    if args.store.is_some() {
        cfg.store = args.store;
    }
    cfg.http
        .allowed_hosts
        .extend(args.allowed_hosts.iter().map(|h| h.to_ascii_lowercase()));
    if let Some(n) = args.max_connections {
        anyhow::ensure!(n > 0, "--max-connections must be at least 1");
        cfg.http.max_connections = n;
    }
    {
        use std::os::unix::fs::DirBuilderExt;
        // Private: it holds the database and the node id.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&cfg.data)
            .with_context(|| format!("cannot create the data folder {}", cfg.data.display()))?;
    }
    if let Some(g) = args.grace {
        let max = offload_store::nodes::MAX_DRAIN_DEADLINE_MS;
        anyhow::ensure!(
            g.as_millis() <= u128::from(max),
            "--grace {} is out of range: at most {max} ms (1 day), as drain_deadline_ms",
            humantime::format_duration(g)
        );
        cfg.drain_deadline = g;
    }
    cfg.node = match args.node_id.or_else(|| cfg.node_id.clone()) {
        Some(id) => id,
        None => node_id(&cfg.data)?,
    };
    // Listened to from here on, before anything is opened or printed: a stop signal while the
    // store opens or the daemon starts ends the start (a PostgreSQL server that does not
    // answer would keep it waiting), one right after "listening" stops the daemon as any other.
    let (mut stop, force) = (StopSignals::listen(), StopSignals::listen());
    let jobs = cfg.jobs.clone();
    let deadline = cfg.drain_deadline;
    let (daemon, shown) = tokio::select! {
        started = start(cfg) => started?,
        signal = StopSignals::next_of(stop.as_mut()) => {
            eprintln!("offload serve: stopped while starting (signal {signal})");
            return Ok(128 + signal);
        }
    };
    let addr = daemon.addr();
    eprintln!("offload serve: listening on http://{addr}");
    eprintln!("  jobs: {}   store: {shown}", jobs.display());
    if let Some(f) = &file {
        eprintln!("  config: {}", f.display());
    }
    eprintln!(
        "  submit a first job:  offload submit --server http://{addr} <job> --params '{{}}' --wait"
    );
    eprintln!(
        "  or:                  curl -s http://{addr}/v1/jobs -H 'content-type: application/json' -d '{{\"job\": \"<job>\"}}'"
    );
    // The stop is bounded: a store that can no longer write (its disk failed, its folder was
    // removed) would keep the drain waiting for job ends it cannot record.
    let forced = tokio::select! {
        () = daemon.run_until(shutdown_signal(stop), deadline) => None,
        code = forced_stop(force, deadline.saturating_add(STOP_MARGIN)) => Some(code),
    };
    if let Some(code) = forced {
        return Ok(code);
    }
    eprintln!("offload serve: stopped");
    Ok(0)
}

/// How long a stop may take beyond the drain deadline (handing jobs back, writing the ends of
/// the last jobs) before the daemon exits anyway.
const STOP_MARGIN: Duration = Duration::from_secs(15);

/// Resolves when a stop must end now: at a second SIGINT or SIGTERM (exit code 128 + the
/// signal), or when the stop has taken `bound` since the first one ([`exit::INTERNAL`]).
/// Jobs whose end was not written stay `running` in the store and run again after the next
/// start (or on another node once their lease ends): at least once, as after a crash. The
/// workers are killed with the daemon.
async fn forced_stop(signals: Option<StopSignals>, bound: Duration) -> i32 {
    let Some(mut signals) = signals else {
        return std::future::pending().await;
    };
    signals.next().await;
    let second = tokio::select! {
        signal = signals.next() => Some(signal),
        () = tokio::time::sleep(bound) => None,
    };
    if let Some(signal) = second {
        eprintln!(
            "offload serve: a second signal: exiting now (jobs whose end was not written \
             run again after the next start)"
        );
        return 128 + signal;
    }
    eprintln!(
        "offload serve: the stop did not finish within {} (the drain deadline + {}): \
         exiting anyway; jobs whose end was not written run again after the next start",
        humantime::format_duration(bound),
        humantime::format_duration(STOP_MARGIN)
    );
    exit::INTERNAL
}

/// Whether `--token` was given on the command line (not through OFFLOAD_TOKEN).
fn token_on_argv() -> bool {
    std::env::args_os().any(|a| {
        let a = a.to_string_lossy();
        a == "--token" || a.starts_with("--token=")
    })
}

/// A stable name for this node, kept in the data folder.
fn node_id(data: &std::path::Path) -> anyhow::Result<String> {
    let path = data.join("node-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim().to_owned();
        if !id.is_empty() {
            return Ok(id);
        }
    }
    // The host name, kept to what a node id may hold.
    let host: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "node".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(100)
        .collect();
    let id = format!(
        "{host}-{:08x}",
        std::process::id()
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos()))
    );
    std::fs::write(&path, &id).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(id)
}

async fn shutdown_signal(signals: Option<StopSignals>) {
    let Some(mut signals) = signals else {
        return std::future::pending().await;
    };
    signals.next().await;
    eprintln!(
        "offload serve: stopping: draining (running jobs get the drain deadline, then are handed back)"
    );
}

/// Opens the store and starts the daemon: the daemon, and how its store is shown.
async fn start(cfg: ServeConfig) -> anyhow::Result<(Daemon, String)> {
    let (store, notices, shown): (Arc<dyn Store>, _, _) = match cfg.store.as_deref() {
        None | Some("sqlite") => {
            let store = SqliteStore::open_with(&cfg.data, cfg.sqlite_options())
                .with_context(|| format!("cannot open the store in {}", cfg.data.display()))?;
            (Arc::new(store), None, cfg.data.display().to_string())
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let options =
                PgOptions::default().with_log_attempts(cfg.limits.max_log_attempts_per_job);
            let store = PgStore::connect_with(url, options)
                .await
                .context("cannot open the PostgreSQL store")?;
            let notices = store.notifications();
            let shown = format!("postgres {} (node {})", store.target(), cfg.node);
            (Arc::new(store), Some(notices), shown)
        }
        Some(other) => anyhow::bail!(
            "store {other:?}: use `sqlite` (the default, in --data) or a postgres:// URL"
        ),
    };
    let daemon = Daemon::start(cfg, store).await?;
    if let Some(notices) = notices {
        tokio::spawn(daemon.handle().follow(notices));
    }
    Ok((daemon, shown))
}

/// SIGINT and SIGTERM, listened to from the daemon's start.
struct StopSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// `None` when they cannot be listened to.
    fn listen() -> Option<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Some(Self {
            int: signal(SignalKind::interrupt()).ok()?,
            term: signal(SignalKind::terminate()).ok()?,
        })
    }

    /// The next of `signals`, never without them.
    async fn next_of(signals: Option<&mut Self>) -> i32 {
        match signals {
            Some(s) => s.next().await,
            None => std::future::pending().await,
        }
    }

    /// The next of them: its number (Linux).
    async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.int.recv() => 2,
            _ = self.term.recv() => 15,
        }
    }
}
