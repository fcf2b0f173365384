//! The `offload serve` binary itself: it starts, serves a job over HTTP, and stops on SIGTERM
//! and on SIGINT with exit 0; a stop that cannot finish (its store broke) ends at its bound or
//! at a second signal, its workers with it. What the daemon does is tested in-process with the server crate
//! (`crates/server/tests/`); this is the wiring of the binary around it (arguments, the signal
//! handler, the banner).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{get, post, repo_root, wait_result, Daemon};
use serde_json::json;

/// Polls `f` every 20 ms until it gives a value; fails with `what()` after 30 s.
fn until<T>(what: impl Fn() -> String, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{}", what());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to the daemon and waits (bounded) for its exit status.
fn stop_with(d: &mut Daemon, signal: &str) -> std::process::ExitStatus {
    send(signal, d.child.id());
    until(
        || format!("offload serve did not stop on {signal}"),
        || d.child.try_wait().unwrap(),
    )
}

#[tokio::test]
async fn offload_serve_starts_serves_and_stops_on_a_signal() {
    for signal in ["-TERM", "-INT"] {
        let mut d = Daemon::start(&repo_root().join("examples/jobs"));
        let (s, _) = get(&d, "/healthz").await;
        assert_eq!(s, 200);
        let (s, v) = post(
            &d,
            "/v1/jobs",
            json!({"job": "hello", "params": {"name": "smoke"}}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        let r = wait_result(&d, v["id"].as_str().unwrap()).await;
        assert_eq!(r["result"]["greeting"], "Hello, smoke!", "{r}");

        let status = stop_with(&mut d, signal);
        assert_eq!(status.code(), Some(0), "{signal}: {status:?}");
        said(&d, "offload serve: stopped");
        let log = d.stderr();
        for line in [
            "offload serve: listening on http://127.0.0.1:",
            "offload serve: stopping",
        ] {
            assert!(
                log.iter().any(|l| l.contains(line)),
                "{signal}: no {line:?} in {log:?}"
            );
        }
    }
}

/// A job that waits for the file named by `params.file`, then answers.
const GATE_JOB: &str = "const fs = require('node:fs');\n\
module.exports = async ({ file }) => {\n\
  while (!fs.existsSync(file)) await new Promise((r) => setTimeout(r, 20));\n\
  return 'opened';\n\
};\n";

/// A daemon with one job running on a store that can no longer write: the job started, then
/// the data folder was removed (the WAL can no longer be flushed), then the job ended. Its end
/// cannot be recorded, so a drain never becomes idle. Returns the daemon and the job's worker.
async fn daemon_whose_store_broke(tmp: &std::path::Path) -> (Daemon, u32) {
    let jobs = tmp.join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(jobs.join("gate.js"), GATE_JOB).unwrap();
    let gate = tmp.join("gate");
    let d = Daemon::start_with(&jobs, &tmp.join("data"), &["--grace", "1s"]);
    let (s, v) = post(
        &d,
        "/v1/jobs",
        json!({"job": "gate", "params": {"file": gate}}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let pid = loop {
        let (_, w) = get(&d, "/v1/workers").await;
        let busy = w["workers"].as_array().and_then(|ws| {
            ws.iter()
                .find(|w| w["in_flight"].as_u64().is_some_and(|n| n > 0))
                .and_then(|w| w["pid"].as_u64())
        });
        if let Some(pid) = busy {
            break u32::try_from(pid).unwrap();
        }
        assert!(Instant::now() < deadline, "the job never ran: {w}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    std::fs::remove_dir_all(tmp.join("data")).unwrap();
    std::fs::write(&gate, "").unwrap();
    // The end is refused by the store: the daemon says so, and keeps the end to retry.
    said(&d, "cannot record job ends");
    (d, pid)
}

/// Waits (bounded) for a line of the daemon's stderr holding `what`: its reader may still be
/// catching up with the last lines when the process has exited.
fn said(d: &Daemon, what: &str) {
    until(
        || format!("no {what:?} in {:?}", d.stderr()),
        || d.stderr().iter().any(|l| l.contains(what)).then_some(()),
    );
}

/// Waits (bounded) until process `pid` no longer runs (gone, or a zombie waiting for its
/// reaper): no orphan left by a forced stop.
fn gone(pid: u32) {
    until(
        || format!("worker {pid} outlived the daemon"),
        || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            (stat.is_empty() || state.starts_with('Z')).then_some(())
        },
    );
}

#[tokio::test]
async fn a_stop_the_store_cannot_finish_ends_at_its_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut d, worker) = daemon_whose_store_broke(tmp.path()).await;
    // Before: the drain waited for the end forever, and later signals were not heard.
    let status = stop_with(&mut d, "-TERM");
    assert_eq!(status.code(), Some(70), "{status:?}: {:?}", d.stderr());
    said(&d, "the stop did not finish within 16s");
    assert!(
        !d.stderr()
            .iter()
            .any(|l| l.contains("offload serve: stopped")),
        "{:?}",
        d.stderr()
    );
    gone(worker);
}

#[tokio::test]
async fn a_second_signal_ends_a_stop_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut d, worker) = daemon_whose_store_broke(tmp.path()).await;
    let pid = d.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    said(&d, "offload serve: stopping");
    let status = stop_with(&mut d, "-INT");
    assert_eq!(status.code(), Some(130), "{status:?}: {:?}", d.stderr());
    said(&d, "a second signal: exiting now");
    gone(worker);
}

/// `--grace` has the bound of `drain_deadline_ms` (1 day); beyond it the daemon refuses to
/// start, naming the limit (it took any duration, up to the edge of `Duration`).
#[test]
fn a_grace_beyond_a_day_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut child = Reaped::serve(&["--grace", "2days"], &data);
    // Bounded: a daemon that accepted the value would serve until killed (on drop).
    let status = until(
        || "offload serve started with --grace 2days".to_owned(),
        || child.0.try_wait().unwrap(),
    );
    let stderr = child.stderr();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--grace 2days is out of range: at most 86400000 ms (1 day)"),
        "{stderr}"
    );
}

/// A stop signal while the store opens ends the start at once, with 128 + the signal: here a
/// "PostgreSQL server" that takes the connection and never answers. (The signal used to take
/// its default action before the daemon listened for it: killed by the signal, no message.)
#[test]
fn a_stop_signal_while_the_store_opens_ends_the_start() {
    for (signal, code) in [("-TERM", 143), ("-INT", 130)] {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        silent.set_nonblocking(true).unwrap();
        let url = format!(
            "postgres://offload@{}/offload",
            silent.local_addr().unwrap()
        );
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let mut child = Reaped::serve(&["--store", &url], &data);
        // In its start once it has connected (and waits for an answer that never comes).
        let _held = until(
            || format!("offload serve never connected to {url}"),
            || {
                if let Some(status) = child.0.try_wait().unwrap() {
                    panic!("offload serve exited before it connected: {status:?}");
                }
                silent.accept().ok()
            },
        );
        send(signal, child.0.id());
        let status = until(
            || format!("offload serve did not end its start on {signal}"),
            || child.0.try_wait().unwrap(),
        );
        let stderr = child.stderr();
        assert_eq!(status.code(), Some(code), "{signal}: {status:?} {stderr}");
        assert!(
            stderr.contains("offload serve: stopped while starting"),
            "{stderr}"
        );
    }
}

/// Sends `signal` (`-TERM`, `-INT`) to `pid`.
fn send(signal: &str, pid: u32) {
    assert!(Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

/// A child process killed and waited for when dropped (a failed assertion leaves none behind).
struct Reaped(std::process::Child);

impl Reaped {
    /// `offload serve` with `args`, its data in `data`, on a free port, its stderr piped.
    fn serve(args: &[&str], data: &std::path::Path) -> Self {
        let data = data.to_str().unwrap();
        let all: Vec<&str> = ["serve"]
            .into_iter()
            .chain(args.iter().copied())
            .chain(["--data", data, "--listen", "127.0.0.1:0"])
            .collect();
        Self(
            common::cli::command(None, &all)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        )
    }

    /// What it printed on stderr (once it has exited).
    fn stderr(&mut self) -> String {
        let mut text = String::new();
        std::io::Read::read_to_string(self.0.stderr.as_mut().unwrap(), &mut text).unwrap();
        text
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
