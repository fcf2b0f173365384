//! `offload nodes`, `offload drain`, `offload undrain` end to end: the real `offload` binary
//! against a real `offload serve` (one node on the embedded SQLite store, same API as a
//! PostgreSQL cluster; the several-node behaviour is `crates/server/tests/nodes.rs`).

mod common;

use std::time::{Duration, Instant};

use common::cli::{self, Out};
use common::{repo_root, Daemon};
use serde_json::Value;

fn offload(server: &str, args: &[&str]) -> Out {
    cli::offload(Some(server), args)
}

fn ok(server: &str, args: &[&str]) -> String {
    let out = offload(server, args);
    assert_eq!(out.code, 0, "offload {args:?}: {out:?}");
    out.stdout
}

/// Polls `offload nodes --json` until node `id` is in `state`.
fn until_state(server: &str, id: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = ok(server, &["nodes", "--json"]);
        let n: Value = out
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|n| n["id"] == id)
            .unwrap_or_else(|| panic!("no node {id}: {out}"));
        if n["state"] == state {
            return n;
        }
        assert!(Instant::now() < deadline, "node {id} never {state}: {n}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn nodes_drain_undrain_and_drain_with_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let jobs = repo_root().join("examples/jobs");
    let mut d = Daemon::start_with(&jobs, &data, &["--node-id", "solo-1", "--lease", "3s"]);
    let s = d.url.clone();

    let table = ok(&s, &["nodes"]);
    let mut lines = table.lines();
    let head = lines.next().unwrap();
    for col in [
        "ID",
        "HOST",
        "VERSION",
        "STATE",
        "HEARTBEAT",
        "RUNNING",
        "POOLS",
    ] {
        assert!(head.contains(col), "{table}");
    }
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("solo-1 *") && row.contains("active"),
        "{table}"
    );
    let n = until_state(&s, "solo-1", "active");
    assert_eq!(n["version"], env!("CARGO_PKG_VERSION"), "{n}");

    // An unknown node: refused, not found.
    let out = offload(&s, &["drain", "nobody"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("no node \"nobody\""), "{out:?}");

    let out = ok(&s, &["drain", "solo-1", "--deadline", "2s"]);
    assert!(out.contains("node solo-1 draining"), "{out}");
    // Nothing runs: it is drained at its next heartbeat.
    until_state(&s, "solo-1", "drained");
    let out = ok(&s, &["undrain", "solo-1"]);
    assert!(out.contains("node solo-1 active"), "{out}");
    // It claims again.
    let out = ok(
        &s,
        &["submit", "hello", "--params", r#"{"name": "n"}"#, "--wait"],
    );
    assert!(out.contains("Hello, n!"), "{out}");

    // Drained with --exit: the daemon exits by itself, cleanly.
    ok(&s, &["drain", "solo-1", "--deadline", "1s", "--exit"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = d.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "it did not exit: {:?}",
            d.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{:?}", d.stderr());

    // The same id starts again at once (its row says stopped), active, without the order;
    // after a SIGKILL too (one process holds a SQLite store: its fresh heartbeat is its own).
    let mut d = Daemon::start_with(&jobs, &data, &["--node-id", "solo-1", "--lease", "3s"]);
    until_state(&d.url.clone(), "solo-1", "active");
    d.kill9();
    let d = Daemon::start_with(&jobs, &data, &["--node-id", "solo-1", "--lease", "3s"]);
    let n = until_state(&d.url.clone(), "solo-1", "active");
    assert!(n.get("drain").is_none(), "{n}");

    // A bad id: refused at start with what to fix.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_offload"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--node-id",
            "a/b",
            "--data",
        ])
        .arg(tmp.path().join("other"))
        .arg("--jobs")
        .arg(&jobs)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("node id") && err.contains("--node-id"),
        "{err}"
    );
}
