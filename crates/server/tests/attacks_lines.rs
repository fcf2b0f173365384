//! Attacks on the line protocol and on admission control (issue 11, rows 7, 8, 9 and 14),
//! against a daemon started in this process (`Daemon::start`) on 127.0.0.1 port 0, in a
//! tempdir, with the job files of `tests/fixtures/lines/` (the shared helper `common::Running`).
//! Loads are bounded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use offload_server::config::{CronSection, PoolSection};
use offload_server::{ConfigError, Daemon, ServeConfig, ServeError};
use offload_store::SqliteStore;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinSet;
use tokio::time::{timeout, Instant};

mod common;

use common::{fixtures, Running, DEADLINE};

fn base_config(tmp: &tempfile::TempDir) -> ServeConfig {
    let mut cfg = ServeConfig::new(fixtures(), tmp.path().join("data"));
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.tcp = Some("127.0.0.1:0".parse().unwrap());
    cfg.udp = Some("127.0.0.1:0".parse().unwrap());
    cfg
}

fn slow_pool() -> PoolSection {
    toml_pool("name = \"slow\"\njobs = [\"slow\"]\nkind = \"node\"\nmax = 1")
}

fn toml_pool(text: &str) -> PoolSection {
    toml::from_str(text).unwrap()
}

/// Sends `request` and a newline, then reads the answer to the end (bounded).
async fn line(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("{request}\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    timeout(DEADLINE, s.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| panic!("no answer to {request:?}"))
        .unwrap();
    String::from_utf8(out).unwrap()
}

/// `n` clients that each send `request` and read their answer to the end (a client is dropped,
/// closing its connection, when its task is aborted).
async fn waiting_clients(addr: SocketAddr, request: &str, n: usize) -> JoinSet<String> {
    let mut set = JoinSet::new();
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        set.spawn(async move {
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out).await;
            String::from_utf8_lossy(&out).into_owned()
        });
    }
    set
}

/// A field of `/proc/self/status` (the daemon runs in this process), as a number.
fn status_field(name: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .unwrap()
}

/// Threads of this process.
fn threads() -> usize {
    status_field("Threads:")
}

/// This process's threads by name, most numerous first (for a failed thread bound).
fn thread_names() -> String {
    let mut names = std::collections::BTreeMap::<String, usize>::new();
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        *names.entry(comm.trim().to_owned()).or_default() += 1;
    }
    let mut v: Vec<_> = names.into_iter().collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.1));
    format!("{v:?}")
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> usize {
    status_field("VmRSS:")
}

async fn refused(cfg: ServeConfig) -> ServeError {
    let store = Arc::new(SqliteStore::open(&cfg.data).unwrap());
    Daemon::start(cfg, store)
        .await
        .expect_err("the daemon must refuse to start")
}

// ---- row 7: exposure --------------------------------------------------------------------------

#[tokio::test]
async fn a_non_loopback_line_bind_without_allow_refuses_to_start() {
    for (tcp, udp) in [("0.0.0.0:0", "127.0.0.1:0"), ("127.0.0.1:0", "0.0.0.0:0")] {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = base_config(&tmp);
        cfg.tcp = Some(tcp.parse().unwrap());
        cfg.udp = Some(udp.parse().unwrap());
        let e = refused(cfg).await;
        assert!(
            matches!(e, ServeError::Config(ConfigError::LinesNeedAllow { .. })),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains("--lines-allow") && text.contains("[lines] allow"),
            "{text}"
        );
        assert!(text.contains("0.0.0.0"), "{text}");
    }
}

#[tokio::test]
async fn the_line_protocol_beside_a_token_needs_the_explicit_opt_in() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = base_config(&tmp);
    cfg.token = Some("secret".into());
    let e = refused(cfg.clone()).await;
    assert!(
        matches!(e, ServeError::Config(ConfigError::LinesNeedAllow { .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains("token"), "{e}");
    // With the opt-in it starts, and loopback peers are served.
    cfg.lines.allow = vec!["127.0.0.1/32".parse().unwrap()];
    let d = Running::start(tmp, cfg).await;
    assert_eq!(
        line(d.tcp(), "queue:check:id:nope").await.get(..4),
        Some("404:")
    );
    d.stop().await;
}

/// A non-loopback address of this machine (the source of its default route), if any: a client
/// bound to it reaches the daemon on 127.0.0.1 as a non-loopback peer.
fn outside_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // No packet is sent: connecting a UDP socket only picks the route.
    s.connect("192.0.2.254:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn peers_outside_loopback_and_the_allow_list_are_closed_and_counted() {
    let Some(outside) = outside_address() else {
        eprintln!("skipped: this machine has no non-loopback address to connect from");
        return;
    };
    for allowed in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = base_config(&tmp);
        if allowed {
            cfg.lines.allow = vec![outside.to_string().parse().unwrap()];
        }
        let d = Running::start(tmp, cfg).await;
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(outside, 0)).unwrap();
        let mut s = socket.connect(d.tcp()).await.unwrap();
        let _ = s.write_all(b"queue:check:id:nope\n").await;
        let mut out = Vec::new();
        let _ = timeout(DEADLINE, s.read_to_end(&mut out)).await.unwrap();
        let out = String::from_utf8_lossy(&out).into_owned();
        let u = UdpSocket::bind(SocketAddr::new(outside, 0)).await.unwrap();
        u.send_to(b"queue:check:id:nope", d.udp()).await.unwrap();
        let (tcp_series, udp_series) = (
            "offload_tcp_refused_total{reason=\"not_allowed\"}",
            "offload_udp_dropped_total{reason=\"not_allowed\"}",
        );
        if allowed {
            assert!(out.starts_with("404:"), "{out}");
            // Served: the datagram is dropped for what it is, not for where it comes from.
            d.metric_until("offload_udp_dropped_total{reason=\"bad_request\"}", |v| {
                v == 1.0
            })
            .await;
            assert_eq!(d.metric(tcp_series).await, 0.0);
            assert_eq!(d.metric(udp_series).await, 0.0);
        } else {
            assert_eq!(out, "", "closed without a word");
            assert_eq!(d.metric(tcp_series).await, 1.0);
            d.metric_until(udp_series, |v| v == 1.0).await;
        }
        d.stop().await;
    }
}

// ---- row 8: bounded waits ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_are_bounded_freed_when_clients_leave_and_hold_no_thread() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = base_config(&tmp);
    cfg.lines.max_waits = 128;
    let d = Running::start(tmp, cfg).await;
    let id = d.scheduled_job("echo").await;
    let baseline = threads();
    let get = format!("queue:get:id:{id}\n");

    // 256 clients wait for a job that is an hour away: 128 wait, 128 are refused at once.
    let mut clients = waiting_clients(d.tcp(), &get, 256).await;
    for _ in 0..128 {
        let answer = timeout(DEADLINE, clients.join_next())
            .await
            .expect("the refusals arrive")
            .unwrap()
            .unwrap();
        assert!(
            answer.starts_with("503:too many waiting requests (limit 128"),
            "{answer}"
        );
    }
    assert_eq!(
        d.metric_until("offload_line_waits", |v| v >= 128.0).await,
        128.0
    );
    assert_eq!(clients.len(), 128);
    // Meanwhile other requests are answered at once, and waits hold no thread.
    assert_eq!(line(d.tcp(), &format!("queue:check:id:{id}")).await, "0");
    // A thread per wait would add 128. Store reads run on the store's own reader threads
    // (started with it, in the baseline): before, Tokio's blocking pool started up to ≈ 105
    // threads for these reads and kept them 10 s. Tokio may still start a thread or two (a
    // containment sweep): that is the margin.
    let during = threads();
    assert!(
        during < baseline + 8,
        "threads went {baseline} → {during} with 128 waits: {}",
        thread_names()
    );

    // The clients leave: their places are freed at once (not after a timeout).
    clients.abort_all();
    while clients.join_next().await.is_some() {}
    d.metric_until("offload_line_waits", |v| v == 0.0).await;
    // 128 new waits are all accepted again.
    let mut again = waiting_clients(d.tcp(), &get, 128).await;
    d.metric_until("offload_line_waits", |v| v == 128.0).await;
    assert_eq!(again.len(), 128, "none was refused");
    // Requests that do not wait are served meanwhile; a call (it waits) is refused at once.
    assert!(line(d.tcp(), "queue:add:echo:x").await.starts_with("id:"));
    let answer = line(d.tcp(), "echo:x").await;
    assert!(
        answer.starts_with("503:too many waiting requests"),
        "{answer}"
    );
    // A queue:get of a job that has ended needs no place: it is answered at once.
    let done = line(d.tcp(), "queue:add:echo:done").await;
    let done = done.strip_prefix("id:").unwrap().to_owned();
    let deadline = Instant::now() + DEADLINE;
    while line(d.tcp(), &format!("queue:check:id:{done}")).await != "2" {
        assert!(Instant::now() < deadline, "job {done} never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(line(d.tcp(), &format!("queue:get:id:{done}")).await, "done");
    again.abort_all();
    while again.join_next().await.is_some() {}
    d.metric_until("offload_line_waits", |v| v == 0.0).await;
    assert_eq!(line(d.tcp(), "echo:still here").await, "still here");
    let after = threads();
    assert!(
        after < baseline + 8,
        "threads went {baseline} → {after} after 256 waits: {}",
        thread_names()
    );
    d.healthy().await;
    d.stop().await;
}

#[tokio::test]
async fn a_wait_ends_after_max_wait_and_the_job_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = base_config(&tmp);
    cfg.lines.max_wait = Duration::from_millis(300);
    let d = Running::start(tmp, cfg).await;
    let id = d.scheduled_job("echo").await;
    let answer = line(d.tcp(), &format!("queue:get:id:{id}")).await;
    assert!(answer.starts_with("504:"), "{answer}");
    assert!(
        answer.contains("max_wait_ms") && answer.contains(&id),
        "{answer}"
    );
    let (st, job) = d.http("GET", &format!("/v1/jobs/{id}"), None).await;
    assert_eq!(
        (st, job["state"].as_str()),
        (200, Some("scheduled")),
        "{job}"
    );
    d.stop().await;
}

// ---- row 9: UDP -------------------------------------------------------------------------------

async fn flood(to: SocketAddr, datagram: &[u8], n: usize) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..n {
        // The kernel may drop some when the daemon's buffer is full: that is allowed.
        let _ = s.send_to(datagram, to).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_flood_queues_at_most_udp_max_queued_jobs_and_counts_the_drops() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = base_config(&tmp);
    cfg.pools = vec![slow_pool()];
    cfg.lines.udp_max_queued = 20;
    cfg.lines.udp_rate_per_s = 1_000_000;
    cfg.lines.udp_burst = 1_000_000;
    let data = cfg.data.clone();
    let d = Running::start(tmp, cfg).await;
    let rss_before = rss_kib();
    // Row 9: 60 KB datagrams. Each job sleeps a minute: none ends during the test.
    let payload = format!("slow:60000{}", " ".repeat(60_000));
    // The kernel drops what the daemon's socket buffer cannot hold (a loaded machine may let
    // fewer than 20 of 2,000 through): flood until the cap is reached and drops are counted.
    let cap = "offload_udp_dropped_total{reason=\"queue_cap\"}";
    let submitted = "offload_jobs_submitted_total";
    let deadline = Instant::now() + DEADLINE;
    let dropped = loop {
        flood(d.udp(), payload.as_bytes(), 500).await;
        let (n, dropped) = (d.metric(submitted).await, d.metric(cap).await);
        if n >= 20.0 && dropped >= 1.0 {
            break dropped;
        }
        assert!(
            Instant::now() < deadline,
            "{n} submitted, {dropped} dropped"
        );
    };
    // One more datagram: seen and dropped (so everything before it was handled too).
    flood(d.udp(), payload.as_bytes(), 1).await;
    d.metric_until(cap, |v| v > dropped).await;
    assert_eq!(d.metric(submitted).await, 20.0);
    // Memory and disk stay bounded (20 jobs of 60 KB; before: 2,979 jobs, 386 MiB on disk).
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    let on_disk: u64 = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(on_disk < 32 << 20, "{on_disk} bytes on disk");
    d.healthy().await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_source_over_its_rate_is_dropped_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = base_config(&tmp);
    cfg.lines.udp_rate_per_s = 1;
    cfg.lines.udp_burst = 10;
    let d = Running::start(tmp, cfg).await;
    let started = Instant::now();
    flood(d.udp(), b"echo:x", 2_000).await;
    let rate = "offload_udp_dropped_total{reason=\"rate\"}";
    let dropped = d.metric_until(rate, |v| v >= 1.0).await;
    flood(d.udp(), b"echo:x", 1).await;
    d.metric_until(rate, |v| v > dropped).await;
    // The burst's jobs are counted once committed, which may come after the drops are counted.
    let submitted = d
        .metric_until("offload_jobs_submitted_total", |v| v >= 1.0)
        .await;
    // The burst, plus one per second of the test.
    let allowed = 10.0 + started.elapsed().as_secs_f64().ceil() + 1.0;
    assert!(
        (1.0..=allowed).contains(&submitted),
        "{submitted} jobs from one source (allowed {allowed})"
    );
    d.stop().await;
}

// ---- row 14: admission control ----------------------------------------------------------------

#[tokio::test]
async fn a_full_queue_is_429_queue_full_over_http_and_503_on_the_line_protocol() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = base_config(&tmp);
    cfg.limits.max_queued_per_pool = 3;
    let d = Running::start(tmp, cfg).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(d.scheduled_job("echo").await);
    }
    let (st, v) = d
        .http(
            "POST",
            "/v1/jobs",
            Some(json!({"job": "echo", "delay_ms": 60_000})),
        )
        .await;
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["error"]["code"], "queue_full");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("max_queued_per_pool = 3"), "{msg}");
    // A batch is refused whole.
    let (st, v) = d
        .http(
            "POST",
            "/v1/jobs/batch",
            Some(json!({"jobs": [{"job": "echo"}, {"job": "echo"}]})),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (429, Some("queue_full")),
        "{v}"
    );
    // The line protocol: 503, and no job.
    for req in ["queue:add:echo:x", "echo:x"] {
        let answer = line(d.tcp(), req).await;
        assert!(answer.starts_with("503:"), "{req}: {answer}");
        assert!(answer.contains("max_queued_per_pool"), "{answer}");
    }
    // UDP: dropped and counted.
    flood(d.udp(), b"echo:x", 1).await;
    d.metric_until("offload_udp_dropped_total{reason=\"refused\"}", |v| {
        v >= 1.0
    })
    .await;
    // The earlier jobs are intact; the daemon answers.
    for id in &ids {
        let (st, job) = d.http("GET", &format!("/v1/jobs/{id}"), None).await;
        assert_eq!((st, job["state"].as_str()), (200, Some("scheduled")));
    }
    assert_eq!(d.metric("offload_jobs_submitted_total").await, 3.0);
    d.healthy().await;
    d.stop().await;
}

#[tokio::test]
async fn cron_schedules_are_capped_in_number_and_frequency() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = base_config(&tmp);
    cfg.limits.max_cron_schedules = 2;
    let d = Running::start(tmp, cfg).await;
    let add = |name: &str, cron: &str| json!({"name": name, "cron": cron, "job": "echo"});
    let (st, v) = d
        .http("POST", "/v1/cron", Some(add("fast", "* * * * * *")))
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_cron")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("min_cron_interval_ms = 60000"),
        "{v}"
    );
    for name in ["a", "b"] {
        let (st, v) = d
            .http("POST", "/v1/cron", Some(add(name, "0 3 * * *")))
            .await;
        assert_eq!(st, 201, "{v}");
    }
    let (st, v) = d
        .http("POST", "/v1/cron", Some(add("c", "0 3 * * *")))
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_cron_schedules = 2"),
        "{v}"
    );
    // Replacing an existing one is not a new schedule.
    let (st, _) = d
        .http("POST", "/v1/cron", Some(add("a", "0 4 * * *")))
        .await;
    assert_eq!(st, 201);
    d.stop().await;

    // The same limits hold for [[cron]] in offload.toml.
    let cron = |name: &str, expr: &str| CronSection {
        name: name.into(),
        cron: expr.into(),
        job: "echo".into(),
        params: Value::Null,
        missed: "skip".into(),
        overlap: "skip".into(),
        pause_after_failures: None,
        timezone: None,
        jitter_ms: None,
        failure_backoff_ms: None,
        failure_backoff_max_ms: None,
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = base_config(&tmp);
    cfg.crons = vec![cron("every-second", "* * * * * *")];
    let e = refused(cfg).await.to_string();
    assert!(e.contains("min_cron_interval_ms"), "{e}");
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = base_config(&tmp);
    cfg.limits.max_cron_schedules = 1;
    cfg.crons = vec![cron("a", "0 3 * * *"), cron("b", "0 4 * * *")];
    let e = refused(cfg).await.to_string();
    assert!(e.contains("max_cron_schedules = 1"), "{e}");
    // An every-second schedule is allowed when the limit permits it.
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = base_config(&tmp);
    cfg.limits.min_cron_interval = Duration::from_secs(1);
    cfg.crons = vec![cron("every-second", "* * * * * *")];
    Running::start(tmp, cfg).await.stop().await;
}

#[tokio::test]
async fn resize_and_pool_max_are_capped_by_max_workers_per_pool() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = base_config(&tmp);
    cfg.pools = vec![slow_pool()];
    let d = Running::start(tmp, cfg).await;
    let (st, v) = d
        .http("POST", "/v1/pools/slow/resize", Some(json!({"size": 65})))
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_workers_per_pool = 64"),
        "{v}"
    );
    let (st, v) = d
        .http("POST", "/v1/pools/slow/resize", Some(json!({"size": 2})))
        .await;
    assert_eq!(st, 200, "{v}");
    d.stop().await;

    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = base_config(&tmp);
    cfg.pools = vec![toml_pool("name = \"big\"\njobs = [\"echo\"]\nmax = 100")];
    let e = refused(cfg).await;
    assert!(
        matches!(
            e,
            ServeError::Config(ConfigError::OverLimit {
                limit: "max_workers_per_pool",
                ..
            })
        ),
        "{e:?}"
    );
}
