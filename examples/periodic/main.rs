//! The periodic-task tutorial (seed 003) with offload: a CPU-heavy job runs every interval in a
//! supervised child process, off the main program; its errors are counted, a failure makes the
//! next runs wait (a doubling backoff), three failures in a row pause it, and Ctrl-C (or
//! `RUNS` runs) stops it gracefully: the run in progress may finish, then the pool stops.
//!
//! ```text
//! cargo run -p offload-schedule --example periodic            # every 2 s until Ctrl-C
//! RUNS=5 FAIL_EVERY=2 cargo run -p offload-schedule --example periodic
//! ```

use std::time::Duration;

use offload_pool::{ChildPool, PoolConfig, RunOptions, WorkerKind};
use offload_schedule::{FailureBackoff, Policy, ScheduleEvent, ScheduleSpec, Scheduler, Trigger};
use serde_json::json;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs = env_number("RUNS", 0); // 0: until Ctrl-C
    let every = Duration::from_millis(env_number("EVERY_MS", 2000));
    let jobs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/periodic/jobs");

    // One resident Node worker, as the tutorial's one forked child (but supervised: it is
    // restarted if it dies, killed if the program dies, and a run is stopped past its timeout).
    let pool = ChildPool::start(PoolConfig::new(WorkerKind::Node, jobs).size(1, 1)).await?;

    let policy = Policy {
        pause_after_failures: Some(3),
        failure_backoff: Some(FailureBackoff::new(every, every * 8)?),
        ..Policy::default()
    };
    let params = json!({
        "urls": ["http://someurl", "http://someurl2", "http://someurl3"],
        "failEvery": env_number("FAIL_EVERY", 0),
    });
    let spec = ScheduleSpec::new("retriever", "retriever", params, Trigger::every(every)?)
        .policy(policy)
        .run_options(RunOptions::default().timeout(Duration::from_secs(30)))
        .immediately(true);
    let schedule = Scheduler::start(&pool, spec);
    let mut events = schedule.events();

    let mut finished = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = events.recv() => match event {
                Ok(ScheduleEvent::Succeeded { value, .. }) => {
                    finished += 1;
                    println!("main: received {value}");
                }
                Ok(ScheduleEvent::Failed { error, consecutive_failures, .. }) => {
                    finished += 1;
                    println!("main: run failed ({consecutive_failures} in a row): {error}");
                }
                Ok(ScheduleEvent::Paused { reason }) => {
                    println!("main: stopped the timer: {reason}");
                    break;
                }
                Ok(ScheduleEvent::Skipped { reason, .. }) => println!("main: tick skipped ({reason:?})"),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            },
        }
        if runs > 0 && finished >= runs {
            break;
        }
    }
    let status = schedule.stop(Duration::from_secs(10)).await;
    println!(
        "main: {} runs, {} succeeded, {} failed, {} ticks skipped",
        status.runs, status.succeeded, status.failed, status.skipped
    );
    pool.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
