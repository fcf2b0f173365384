//! A worker whose events wait for a listener that does not read them (event backpressure,
//! `crates/process/src/flow.rs`): its reader says so once, after `STALL_WARNING`, naming the
//! worker, and says nothing about a worker whose events are read. Real Node workers; the
//! warning read from a `tracing` subscriber of this test process (nextest gives each test a
//! process of its own, so the global subscriber sees this test alone).

use std::io::Write;
use std::sync::{Arc, Mutex};

use offload_process::{
    ChildJob, ChildJobConfig, ExecOptions, Outcome, ProcessEvent, STALL_WARNING,
};
use serde_json::json;

mod common;

use common::*;

/// Everything logged, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The stall warnings about worker `pid`.
    fn warnings_about(&self, pid: u32) -> usize {
        self.text()
            .lines()
            .filter(|l| {
                l.contains("WARN")
                    && l.contains("event backpressure")
                    && l.contains(&format!("pid={pid} "))
            })
            .count()
    }
}

/// Reads `p`'s events to its exit; answers its outcome and the progress count.
async fn read_to_exit(
    mut events: tokio::sync::broadcast::Receiver<ProcessEvent>,
) -> (Outcome, u64) {
    let mut progress = 0;
    loop {
        match events.recv().await {
            Ok(ProcessEvent::Progress { .. }) => progress += 1,
            Ok(ProcessEvent::Exited { outcome, .. }) => return (outcome, progress),
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

/// The run of `progress.js` with `count` ended well, every progress received.
fn all_delivered((outcome, got): (Outcome, u64), count: u64) {
    assert_eq!(
        outcome,
        Outcome::Succeeded {
            value: json!(count)
        }
    );
    assert_eq!(got, count, "every progress");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_receiver_that_holds_a_workers_events_is_reported_once_naming_the_worker() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .init();
    guarded(async {
        let count = 200;
        let jobs = ChildJob::new(
            ChildJobConfig::with_jobs_dir(offload_conformance::jobs_dir())
                .handle_signals(false)
                .event_backpressure(8),
        );
        let params = json!({ "count": count });
        let held = jobs
            .exec("progress.js", params.clone(), ExecOptions::default())
            .await
            .unwrap();
        let read = jobs
            .exec("progress.js", params, ExecOptions::default())
            .await
            .unwrap();
        // One receiver kept and not read: the first worker's events wait for it. The other
        // worker's events are read as they come.
        let unread = held.events();
        let reading = tokio::spawn(read_to_exit(read.events()));
        tokio::time::sleep(STALL_WARNING + std::time::Duration::from_secs(2)).await;
        assert_eq!(log.warnings_about(held.pid()), 1, "{}", log.text());
        assert!(
            log.text().contains("receiver of its events"),
            "{}",
            log.text()
        );
        all_delivered(reading.await.unwrap(), count);
        assert_eq!(log.warnings_about(read.pid()), 0, "{}", log.text());
        // Read at last: the held worker's events and answer come, every one, and no second
        // warning about the same stall.
        all_delivered(read_to_exit(unread).await, count);
        assert_eq!(log.warnings_about(held.pid()), 1, "{}", log.text());
    })
    .await;
}
