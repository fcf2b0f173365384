//! `ChildPool`: a supervised pool of resident worker processes.
//!
//! One central queue feeds workers that have free capacity (so a long job never blocks short
//! ones behind it); the [`Algorithm`] chooses among eligible
//! workers. Workers that die are replaced (with backoff; a crash loop marks the pool degraded);
//! their jobs are retried on other workers while attempts remain, else they fail with the death
//! reason — never lost, never hung. Timeouts cancel, wait a grace, then kill the worker.
//! Workers are recycled after N jobs, above an RSS limit or past an age, the replacement
//! starting first. A worker that becomes idle has what its jobs left behind killed (its cgroup's
//! other processes, where cgroups exist). The actor runs under a supervisor: if it panics, its
//! jobs fail with `SupervisorFailed`, its workers are killed and it starts again. See
//! `docs/design/pool.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use offload_pool::{ChildPool, PoolConfig, WorkerKind};
//!
//! let pool = ChildPool::start(PoolConfig::new(WorkerKind::Node, "examples/jobs").size(2, 4)).await?;
//! let job = pool.run("hello", serde_json::json!({"name": "pool"})).await?;
//! let result = job.result().await;
//! println!("{} after {} attempt(s)", result.outcome, result.attempts.len());
//! pool.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod actor;
mod config;
mod error;
mod events;
mod host_options;
mod listen;
mod options;
mod params;
mod pool;
mod procfs;
mod reply;
mod shared;
mod streams;
mod supervise;
mod timers;
mod types;

pub use actor::MAX_BINDINGS;
pub use config::{
    Backpressure, HostReader, PoolConfig, RecyclePolicy, RestartPolicy, RetryPolicy, WorkerKind,
    DEFAULT_SOFT_KILL_BUSY_LIMIT, MAX_WORKERS, MIN_PING,
};
pub use error::{PoolError, StartError};
pub use host_options::{signal_by_name, HostOptionError, HostPoolOptions};
pub use listen::{Affinity, ConnectionServer, ServeConnections};
pub use offload_balance::Algorithm;
pub use offload_protocol::{StreamError, StreamReader, StreamWriter, DEFAULT_STREAM_STALL};
pub use options::{OnStart, RunOptions, MAX_KEY_BYTES};
pub use pool::{Canceller, ChildPool, JobHandle};
pub use streams::{JobStreams, StreamOptions};
pub use types::{
    Attempt, EscalationReason, JobEvent, JobId, JobResult, KillMode, KillOrder, PoolEvent,
    RecycleReason, WorkerHealth, WorkerState,
};
