//! A supervisor in a process of its own, for tests that signal or SIGKILL it: runs one job
//! with ChildJob, prints `pid <worker pid>` on stdout, and waits for its outcome.
//!
//! Usage: `supervisor-fixture <jobs dir> <job> [params json] [--shutdown-all] [--term-at-once]`;
//! the environment passes through to the job. With `--shutdown-all` it calls
//! `registry::shutdown_all()` right after the start and prints the outcome. With
//! `--term-at-once` it sends itself SIGTERM right after making its ChildJob (which installs
//! the registry's signal handlers), before it yields to the runtime.
//!
//! `supervisor-fixture <jobs dir> --pool-term-at-start` starts a ChildPool of two Node workers
//! instead and sends itself SIGTERM while the pool starts (after the start's first poll).

use std::future::Future;
use std::task::Poll;

use offload_pool::{ChildPool, PoolConfig, WorkerKind};
use offload_process::{registry, ChildJob, ChildJobConfig, ExecOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let shutdown_all = args.iter().any(|a| a == "--shutdown-all");
    let term_at_once = args.iter().any(|a| a == "--term-at-once");
    let pool_term_at_start = args.iter().any(|a| a == "--pool-term-at-start");
    let args: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    if let (true, Some(dir)) = (pool_term_at_start, args.first()) {
        pool_term_at_start_in(dir).await;
    }
    let (Some(dir), Some(job)) = (args.first(), args.get(1)) else {
        eprintln!("usage: supervisor-fixture <jobs dir> <job> [params] [--shutdown-all]");
        std::process::exit(2);
    };
    let params = args.get(2).map_or(serde_json::Value::Null, |p| {
        serde_json::from_str(p).expect("params are json")
    });
    let jobs = ChildJob::new(ChildJobConfig::with_jobs_dir(dir.as_str()));
    if term_at_once {
        raise_term();
    }
    let process = jobs
        .exec(job, params, ExecOptions::default())
        .await
        .expect("exec");
    println!("pid {}", process.pid());
    if shutdown_all {
        registry::shutdown_all().await;
    }
    let outcome = process.exited().await;
    println!("outcome {}", serde_json::to_string(&outcome).expect("json"));
    if let Some(signal) = registry::received_signal() {
        std::process::exit(128 + signal);
    }
}

/// Starts a pool of two Node workers on `dir`, raises SIGTERM once the start has begun, and
/// waits: the registry's listener ends the process (exit 143).
async fn pool_term_at_start_in(dir: &str) -> ! {
    let start = ChildPool::start(PoolConfig::new(WorkerKind::Node, dir).size(2, 2));
    let mut start = std::pin::pin!(start);
    // One poll: the start validates, registers the pool and spawns its workers' start.
    std::future::poll_fn(|cx| {
        let _ = start.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
    raise_term();
    let _pool = start.await;
    std::future::pending().await
}

#[expect(unsafe_code, reason = "the fixture signals itself")]
fn raise_term() {
    // SAFETY: raise(3) has no memory-safety preconditions.
    unsafe {
        libc::raise(libc::SIGTERM);
    }
}
