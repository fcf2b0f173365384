//! Descriptors passed with a run (`docs/protocol.md` §9), against real worker processes: a
//! pool and a ChildJob pass sockets, pipes and files; too many, a worker without the
//! capability, a kind it cannot take and a worker that never acknowledges each fail typed; and
//! nothing leaks on either side (the tests count `/proc/<pid>/fd` of the supervisor — this test
//! process — and of the worker).

mod common;

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::*;
use offload_conformance::{repo_root, Kind};
use offload_pool::{ChildPool, JobResult, PoolConfig, PoolError, RunOptions, WorkerKind};
use offload_process::{FdError, Outcome, ProcessOptions};
use offload_protocol::Run;
use serde_json::json;

fn read_all(mut s: UnixStream) -> String {
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn failed_name(r: &JobResult) -> &str {
    match &r.outcome {
        Outcome::Failed { name, .. } | Outcome::FailedNoRetry { name, .. } => name,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_passes_sockets_and_pipes_and_nothing_leaks_on_either_side() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(1, 1)).await.unwrap();
        let pid = warm(&pool).await;
        let (mine, worker) = (fd_links(), fds_of(pid));
        for round in 0..3 {
            let (ours, theirs) = UnixStream::pair().unwrap();
            let (pipe_r, pipe_w) = std::io::pipe().unwrap();
            let fds: Vec<OwnedFd> = vec![theirs.into(), pipe_w.into()];
            let r = pool
                .run_with_fds(
                    "fd_write",
                    json!({"text": format!("hi{round}")}),
                    RunOptions::default(),
                    fds,
                )
                .await
                .unwrap()
                .result()
                .await;
            assert_eq!(
                r.outcome,
                Outcome::Succeeded {
                    value: json!({"fds": 2})
                }
            );
            // The worker closed both, the pool closed its copies: both reads end.
            assert_eq!(read_all(ours), format!("hi{round} 0\n"));
            let mut piped = String::new();
            std::io::BufReader::new(pipe_r)
                .read_to_string(&mut piped)
                .unwrap();
            assert_eq!(piped, format!("hi{round} 1\n"));
        }
        assert_supervisor_fds(&mine).await;
        assert_eq!(fds_of(pid), worker, "the worker leaked descriptors");
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptors_a_job_does_not_take_are_closed_when_it_ends_whatever_the_outcome() {
    guarded(async {
        let pool = ChildPool::start(rust_pool(1, 1)).await.unwrap();
        let pid = warm(&pool).await;
        let (mine, worker) = (fd_links(), fds_of(pid));
        for job in ["fd_ignore", "no_such_job", "fail"] {
            let (ours, theirs) = UnixStream::pair().unwrap();
            let r = pool
                .run_with_fds(
                    job,
                    json!({"message": "no"}),
                    RunOptions::default(),
                    vec![theirs.into()],
                )
                .await
                .unwrap()
                .result()
                .await;
            assert_eq!(
                r.attempts.len(),
                1,
                "{job}: a run with descriptors has one attempt"
            );
            // End of file: no copy is left open anywhere.
            assert_eq!(read_all(ours), "", "{job}");
        }
        assert_supervisor_fds(&mine).await;
        assert_eq!(fds_of(pid), worker, "the worker leaked descriptors");
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_descriptors_than_the_limit_are_refused_at_submit_and_closed() {
    guarded(async {
        let mut cfg = rust_pool(1, 1);
        cfg.max_fds_per_run = 2;
        let pool = ChildPool::start(cfg).await.unwrap();
        let mine = fd_links();
        let pairs: Vec<(UnixStream, UnixStream)> =
            (0..3).map(|_| UnixStream::pair().unwrap()).collect();
        let (ours, theirs): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
        let fds: Vec<OwnedFd> = theirs.into_iter().map(Into::into).collect();
        let err = pool
            .run_with_fds("fd_write", json!({"text": "x"}), RunOptions::default(), fds)
            .await
            .unwrap_err();
        assert_eq!(err, PoolError::Fds(FdError::TooMany { count: 3, max: 2 }));
        for s in ours {
            assert_eq!(read_all(s), "");
        }
        assert_supervisor_fds(&mine).await;
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

/// One worker that takes descriptors but never acknowledges them (300 ms to do it).
fn no_ack_pool() -> PoolConfig {
    let script = repo_root().join("tests/conformance/fixtures/workers/no-ack-worker.py");
    let mut cfg = PoolConfig::new(WorkerKind::Program(script), fixtures())
        .size(1, 1)
        .handle_signals(false);
    cfg.fd_ack_timeout = Duration::from_millis(300);
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_never_acknowledges_fails_the_run_typed_and_the_pool_stays_healthy() {
    guarded(async {
        let pool = ChildPool::start(no_ack_pool()).await.unwrap();
        let pid = warm(&pool).await;
        let mine = fd_links();
        for expect_index in [0, 0] {
            let (ours, theirs) = UnixStream::pair().unwrap();
            let r = pool
                .run_with_fds("echo", json!(1), RunOptions::default(), vec![theirs.into()])
                .await
                .unwrap()
                .result()
                .await;
            // The first misses its acknowledgement; the worker gets no more descriptors, so
            // the second fails the same way without waiting.
            assert_eq!(failed_name(&r), "FdAckTimeout", "{:?}", r.outcome);
            assert!(format!("{:?}", r.outcome).contains(&format!("descriptor {expect_index}")));
            drop(ours);
        }
        // The worker still runs jobs, and it is the same worker.
        assert_eq!(warm(&pool).await, pid);
        assert_supervisor_fds(&mine).await;
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

/// With a log sink (the daemon's), answers wait for the output pumps' drain; an answer the
/// supervisor makes itself, outside a read of the channel (here the missed acknowledgement),
/// must not wait for a next read that may never come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_log_sink_a_run_whose_descriptors_fail_still_ends() {
    guarded(async {
        let mut cfg = no_ack_pool();
        let (sink, mut lines) = tokio::sync::mpsc::channel(64);
        cfg.log_sink = Some(sink);
        let reader = tokio::spawn(async move { while lines.recv().await.is_some() {} });
        let pool = ChildPool::start(cfg).await.unwrap();
        warm(&pool).await;
        let (ours, theirs) = UnixStream::pair().unwrap();
        let handle = pool
            .run_with_fds("echo", json!(1), RunOptions::default(), vec![theirs.into()])
            .await
            .unwrap();
        let r = tokio::time::timeout(Duration::from_secs(20), handle.result())
            .await
            .expect("the run's end never came");
        assert_eq!(failed_name(&r), "FdAckTimeout", "{:?}", r.outcome);
        drop(ours);
        pool.shutdown(Duration::from_secs(5)).await;
        reader.abort();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_the_capability_fails_typed_before_anything_is_sent() {
    guarded(async {
        let cmd = Kind::PlainNode
            .command(std::path::Path::new(RUST_WORKER))
            .jobs_dir(offload_conformance::jobs_dir());
        let process = offload_process::start_process(cmd, ProcessOptions::default())
            .await
            .unwrap();
        process.ready().await.unwrap();
        let mine = fd_links();
        let (ours, theirs) = UnixStream::pair().unwrap();
        let err = process
            .run_with_fds(Run::new("r1", "echo", json!(1)), vec![theirs.into()])
            .await
            .unwrap_err();
        assert_eq!(err, FdError::NotSupported);
        assert_eq!(read_all(ours), "");
        assert_supervisor_fds(&mine).await;
        process.kill(Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_job_passes_a_socket_to_its_one_run() {
    guarded(async {
        let (_dir, jobs) = native_jobs(&["fd_write"]);
        // A first job opens what the supervisor keeps for its life (the lifeline).
        let first = jobs
            .exec(
                "fd_write",
                json!({"text": "none"}),
                offload_process::ExecOptions::default(),
            )
            .await
            .unwrap();
        assert!(first.exited().await.is_success());
        let mine = fd_links();
        let (ours, theirs) = UnixStream::pair().unwrap();
        let p = jobs
            .exec_with_fds(
                "fd_write",
                json!({"text": "child"}),
                offload_process::ExecOptions::default(),
                vec![theirs.into()],
            )
            .await
            .unwrap();
        assert_eq!(
            p.outcome().await,
            Outcome::Succeeded {
                value: json!({"fds": 1})
            }
        );
        assert_eq!(read_all(ours), "child 0\n");
        p.exited().await;
        assert_supervisor_fds(&mine).await;
    })
    .await;
}

fn sdk_pool(kind: WorkerKind) -> PoolConfig {
    PoolConfig::new(kind, offload_conformance::jobs_dir())
        .size(1, 1)
        .handle_signals(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_sdk_gets_net_sockets_and_refuses_a_file_typed() {
    guarded(async {
        let pool = ChildPool::start(sdk_pool(WorkerKind::Node)).await.unwrap();
        let pid = warm(&pool).await;
        let (mine, worker) = (fd_links(), fds_of(pid));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp_ours = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (tcp_theirs, _) = listener.accept().unwrap();
        drop(listener);
        let (unix_ours, unix_theirs) = UnixStream::pair().unwrap();
        let r = pool
            .run_with_fds(
                "fd_write",
                json!({"text": "node"}),
                RunOptions::default(),
                vec![unix_theirs.into(), tcp_theirs.into()],
            )
            .await
            .unwrap()
            .result()
            .await;
        assert_eq!(
            r.outcome,
            Outcome::Succeeded {
                value: json!({"fds": 2})
            }
        );
        assert_eq!(read_all(unix_ours), "node 0\n");
        let mut got = String::new();
        (&tcp_ours).read_to_string(&mut got).unwrap();
        assert_eq!(got, "node 1\n");
        drop(tcp_ours);
        // Node cannot wrap a file: refused before anything is sent.
        let file = tempfile::tempfile().unwrap();
        let r = pool
            .run_with_fds(
                "fd_write",
                json!({"text": "x"}),
                RunOptions::default(),
                vec![file.into()],
            )
            .await
            .unwrap()
            .result()
            .await;
        assert_eq!(failed_name(&r), "FdWrongKind", "{:?}", r.outcome);
        assert_eq!(
            warm(&pool).await,
            pid,
            "the worker is still the same and healthy"
        );
        assert_supervisor_fds(&mine).await;
        wait_until(
            "the node worker closed what it got",
            Duration::from_secs(10),
            || fds_of(pid) == worker,
        )
        .await;
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_gets_sockets_and_files() {
    guarded(async {
        let pool = ChildPool::start(sdk_pool(WorkerKind::Python))
            .await
            .unwrap();
        let pid = warm(&pool).await;
        let file = tempfile::NamedTempFile::new().unwrap();
        let (mine, worker) = (fd_links(), fds_of(pid));
        let (ours, theirs) = UnixStream::pair().unwrap();
        let writable = std::fs::OpenOptions::new()
            .write(true)
            .open(file.path())
            .unwrap();
        let r = pool
            .run_with_fds(
                "fd_write",
                json!({"text": "py"}),
                RunOptions::default(),
                vec![theirs.into(), writable.into()],
            )
            .await
            .unwrap()
            .result()
            .await;
        assert_eq!(
            r.outcome,
            Outcome::Succeeded {
                value: json!({"fds": 2})
            }
        );
        assert_eq!(read_all(ours), "py 0\n");
        assert_eq!(std::fs::read_to_string(file.path()).unwrap(), "py 1\n");
        assert_supervisor_fds(&mine).await;
        assert_eq!(fds_of(pid), worker, "the worker leaked descriptors");
        pool.shutdown(Duration::from_secs(5)).await;
    })
    .await;
}

mod distribution {
    //! Connection distribution (`offload_pool::ConnectionServer`): a pool owns a listener and
    //! hands each accepted connection to a worker.
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpStream;

    use offload_pool::{Affinity, Algorithm, ConnectionServer, ServeConnections};

    use super::*;

    struct Client {
        out: TcpStream,
        lines: BufReader<TcpStream>,
    }

    impl Client {
        fn connect(addr: std::net::SocketAddr) -> Self {
            let out = TcpStream::connect(addr).unwrap();
            out.set_read_timeout(Some(GUARD)).unwrap();
            let lines = BufReader::new(out.try_clone().unwrap());
            Self { out, lines }
        }

        /// Sends a line; the serving worker's pid and the echo, or `None` at end of file.
        fn ask(&mut self, text: &str) -> Option<(u32, String)> {
            self.out.write_all(format!("{text}\n").as_bytes()).ok()?;
            let mut line = String::new();
            if self.lines.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let (pid, echo) = line.trim_end().split_once(' ')?;
            Some((pid.parse().ok()?, echo.to_owned()))
        }
    }

    async fn serving(algorithm: Algorithm, affinity: Affinity) -> (ChildPool, ConnectionServer) {
        let cfg = rust_pool(1, 1)
            .size(2, 2)
            .concurrency(8)
            .algorithm(algorithm);
        let pool = ChildPool::start(cfg).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = ConnectionServer::start(
            &pool,
            listener,
            ServeConnections::new("conn_serve").affinity(affinity),
        )
        .unwrap();
        (pool, server)
    }

    /// Runs blocking client code off the runtime.
    async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        tokio::task::spawn_blocking(f).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_are_spread_over_the_workers_and_a_dead_worker_takes_only_its_own() {
        guarded(async {
            let (pool, server) = serving(Algorithm::Polling, Affinity::None).await;
            let addr = server.local_addr();
            let (mut a, mut b, pid_a, pid_b) = blocking(move || {
                let mut a = Client::connect(addr);
                let (pid_a, echo) = a.ask("one").unwrap();
                assert_eq!(echo, "one");
                // Polling (round robin): the next connection goes to the other worker.
                let mut b = Client::connect(addr);
                let (pid_b, _) = b.ask("two").unwrap();
                (a, b, pid_a, pid_b)
            })
            .await;
            assert_ne!(pid_a, pid_b, "two connections, two workers");
            let mut events = pool.events();
            sigkill(pid_a);
            let (a_after, b_after, b) = blocking(move || {
                let (x, y) = (a.ask("still?"), b.ask("still?"));
                (x, y, b)
            })
            .await;
            assert_eq!(a_after, None, "the dead worker's connection is gone");
            assert_eq!(
                b_after,
                Some((pid_b, "still?".into())),
                "the other one goes on"
            );
            // Once the pool saw the death (a connection handed out before then would go to the
            // dying worker and fail: one attempt), new connections are served.
            loop {
                if let offload_pool::PoolEvent::WorkerExited { pid, .. } =
                    events.recv().await.unwrap()
                {
                    if pid == pid_a {
                        break;
                    }
                }
            }
            let answer = blocking(move || Client::connect(addr).ask("new")).await;
            assert_eq!(answer.map(|(_, e)| e), Some("new".into()));
            drop(b);
            server.stop();
            pool.shutdown(Duration::from_secs(5)).await;
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_client_ip_affinity_one_address_stays_on_one_worker() {
        guarded(async {
            let (pool, server) = serving(Algorithm::Polling, Affinity::ClientIp).await;
            let addr = server.local_addr();
            let pids = blocking(move || {
                let mut clients: Vec<Client> = (0..4).map(|_| Client::connect(addr)).collect();
                clients
                    .iter_mut()
                    .map(|c| c.ask("hi").unwrap().0)
                    .collect::<Vec<_>>()
            })
            .await;
            assert!(pids.iter().all(|&p| p == pids[0]), "{pids:?}");
            assert_eq!(server.accepted(), 4);
            server.stop();
            pool.shutdown(Duration::from_secs(5)).await;
        })
        .await;
    }

    fn sigkill(pid: u32) {
        assert!(offload_process::signal_group(pid, 9).unwrap());
    }
}

/// CPU time (user + system, in clock ticks of 10 ms) of `pid`, or of this process.
fn cpu_ticks(pid: Option<u32>) -> u64 {
    let path = pid.map_or("/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Part 3 of issue 17 (streams), measured before choosing: 256 MiB out of a worker through a
/// passed pipe, against the same bytes as 16 result frames of 16 MiB (the largest frame).
/// Prints CPU time of both sides; run with `--run-ignored only` and `--no-capture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn measure_a_passed_pipe_against_result_frames() {
    const TOTAL: usize = 256 << 20;
    const FRAME: usize = (16 << 20) - 1024;
    let pool = ChildPool::start(rust_pool(1, 1)).await.unwrap();
    let pid = warm(&pool).await;
    let (me0, w0, t0) = (
        cpu_ticks(None),
        cpu_ticks(Some(pid)),
        std::time::Instant::now(),
    );
    let (r, w) = std::io::pipe().unwrap();
    let reader = tokio::task::spawn_blocking(move || {
        let mut r = r;
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0usize;
        loop {
            match std::io::Read::read(&mut r, &mut buf).unwrap() {
                0 => return got,
                n => got += n,
            }
        }
    });
    let res = pool
        .run_with_fds(
            "fd_pump",
            json!({"bytes": TOTAL}),
            RunOptions::default(),
            vec![w.into()],
        )
        .await
        .unwrap()
        .result()
        .await;
    assert!(res.outcome.is_success(), "{:?}", res.outcome);
    assert_eq!(reader.await.unwrap(), TOTAL);
    let pipe = (
        cpu_ticks(None) - me0,
        cpu_ticks(Some(pid)) - w0,
        t0.elapsed(),
    );
    let (me0, w0, t0) = (
        cpu_ticks(None),
        cpu_ticks(Some(pid)),
        std::time::Instant::now(),
    );
    let mut got = 0;
    while got < TOTAL {
        let r = pool
            .run("big", json!({"bytes": FRAME.min(TOTAL - got)}))
            .await
            .unwrap()
            .result()
            .await;
        let Outcome::Succeeded { value } = r.outcome else {
            panic!("{:?}", r.outcome)
        };
        got += value.as_str().unwrap().len();
    }
    let frames = (
        cpu_ticks(None) - me0,
        cpu_ticks(Some(pid)) - w0,
        t0.elapsed(),
    );
    println!(
        "256 MiB: passed pipe: supervisor {} ms CPU, worker {} ms CPU, {:?} wall; \
         result frames: supervisor {} ms CPU, worker {} ms CPU, {:?} wall",
        pipe.0 * 10,
        pipe.1 * 10,
        pipe.2,
        frames.0 * 10,
        frames.1 * 10,
        frames.2
    );
    pool.shutdown(Duration::from_secs(5)).await;
}
