//! The Rust worker of the pool benchmark: `inc` returns `x + 1`, `spin` busy-waits 1 ms (the
//! CPU stays busy: no sleep) and returns `x`.

use std::time::{Duration, Instant};

use offload_worker::{Context, JobError, Worker};
use serde::Deserialize;

#[derive(Deserialize)]
struct X {
    x: u64,
}

fn main() {
    Worker::new()
        .handler("inc", |p: X, _ctx: Context| async move {
            Ok::<_, JobError>(p.x + 1)
        })
        .handler("spin", |p: X, _ctx: Context| async move {
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(1) {
                std::hint::spin_loop();
            }
            Ok::<_, JobError>(p.x)
        })
        .run()
}
