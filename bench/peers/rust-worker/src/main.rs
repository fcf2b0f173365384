//! The Rust worker of the pool benchmark: `inc` returns `x + 1`, `spin` busy-waits 1 ms (the
//! CPU stays busy: no sleep) and returns `x`.
//!
//! By default it runs as the SDK intends (`Worker::run`: a current-thread tokio runtime and a
//! watchdog thread). `BENCH_WORKER_RUNTIME=current` calls `Worker::serve` on a current-thread
//! runtime of its own instead (the experiment row `offload-rust-ct`; before the SDK moved to a
//! current-thread runtime it measured what the multi-threaded one cost).

use std::time::{Duration, Instant};

use offload_worker::{Context, JobError, Worker};
use serde::Deserialize;

#[derive(Deserialize)]
struct X {
    x: u64,
}

fn main() {
    let worker = Worker::new()
        .handler("inc", |p: X, _ctx: Context| async move {
            Ok::<_, JobError>(p.x + 1)
        })
        .handler("spin", |p: X, _ctx: Context| async move {
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(1) {
                std::hint::spin_loop();
            }
            Ok::<_, JobError>(p.x)
        });
    if std::env::var("BENCH_WORKER_RUNTIME").as_deref() == Ok("current") {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let code = match rt.block_on(worker.serve()) {
            Ok(_) => 0,
            Err(e) => {
                eprintln!("offload worker: {e}");
                2
            }
        };
        std::process::exit(code)
    }
    worker.run()
}
