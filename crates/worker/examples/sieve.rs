//! A native job with the Rust SDK: counts the primes below `limit`, reporting progress, and
//! stops when cancelled. `examples/jobs/sieve-rs` builds and runs it.

use offload_worker::{Context, JobError, Worker};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Params {
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    10_000_000
}

#[derive(Serialize)]
struct Primes {
    limit: usize,
    primes: usize,
}

async fn sieve(p: Params, ctx: Context) -> Result<Primes, JobError> {
    let limit = p.limit.clamp(2, 1_000_000_000);
    let mut composite = vec![false; limit + 1];
    let mut count = 0;
    let step = (limit / 20).max(1);
    for i in 2..=limit {
        if !composite[i] {
            count += 1;
            let mut j = i.saturating_mul(i);
            while j <= limit {
                composite[j] = true;
                j += i;
            }
        }
        if i % step == 0 {
            ctx.progress(serde_json::json!({ "done": i, "total": limit }));
            if ctx.is_cancelled() {
                return Err(JobError::cancelled());
            }
            tokio::task::yield_now().await;
        }
    }
    Ok(Primes {
        limit,
        primes: count,
    })
}

fn main() {
    Worker::new().default_handler(sieve).run()
}
