//! The `offload serve` binary itself: it starts, serves a job over HTTP, and stops on SIGTERM
//! and on SIGINT with exit 0. What the daemon does is tested in-process with the server crate
//! (`crates/server/tests/`); this is the wiring of the binary around it (arguments, the signal
//! handler, the banner).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{get, post, repo_root, wait_result, Daemon};
use serde_json::json;

/// Sends `signal` to the daemon and waits (bounded) for its exit status.
fn stop_with(d: &mut Daemon, signal: &str) -> std::process::ExitStatus {
    let pid = d.child.id().to_string();
    assert!(Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = d.child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "offload serve did not stop on {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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
        // The reader of its stderr may still be catching up with the last lines.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !d
            .stderr()
            .iter()
            .any(|l| l.contains("offload serve: stopped"))
        {
            assert!(Instant::now() < deadline, "{signal}: {:?}", d.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = d.stderr();
        for said in [
            "offload serve: listening on http://127.0.0.1:",
            "offload serve: stopping",
        ] {
            assert!(
                log.iter().any(|l| l.contains(said)),
                "{signal}: no {said:?} in {log:?}"
            );
        }
    }
}
