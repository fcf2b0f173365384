//! Operations: workers, pools, resize, health.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A worker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WorkerState {
    /// Started, no handshake yet.
    Starting,
    /// Taking jobs.
    Ready,
    /// Taking no new jobs; stops when its jobs are done.
    Draining,
    /// Told to stop.
    Stopping,
}

/// A worker as `GET /v1/workers` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Worker {
    /// Its pool.
    pub pool: String,
    /// Its pid.
    pub pid: u32,
    /// Its slot in the pool.
    pub index: usize,
    /// Its state.
    pub state: WorkerState,
    /// Resident memory of its whole process tree, bytes.
    pub rss: u64,
    /// CPU of its process tree, percent of one core.
    pub cpu: f64,
    /// Heap in use, bytes, as its last `pong` reported (Node `heapUsed`; Python and Rust: the
    /// C allocator's bytes in use); absent until one arrives or when its runtime does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_used: Option<u64>,
    /// Heap reserved, bytes (Node `heapTotal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_total: Option<u64>,
    /// Jobs running in it now.
    pub in_flight: usize,
    /// Jobs it finished.
    pub jobs_done: u64,
    /// Jobs that failed in it.
    pub failures: u64,
    /// Restarts of its slot.
    pub restarts: u32,
    /// Since it started.
    pub uptime_ms: u64,
    /// Its last error, if any.
    pub last_error: Option<String>,
}

/// `GET /v1/workers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkerList {
    /// Every worker of every pool.
    pub workers: Vec<Worker>,
}

/// Which runtime a pool runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PoolKind {
    /// Node.
    Node,
    /// Python.
    Python,
    /// An executable.
    Native,
}

/// How a pool runs its jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Isolation {
    /// Long-lived workers, several jobs each.
    Pool,
    /// A process per job.
    Process,
}

/// A pool as `GET /v1/pools` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Pool {
    /// Its name.
    pub name: String,
    /// Its runtime.
    pub kind: PoolKind,
    /// Workers or a process per job.
    pub isolation: Isolation,
    /// Fewest workers.
    pub min: usize,
    /// Most workers.
    pub max: usize,
    /// Jobs at once per worker.
    pub concurrency: u32,
    /// Workers now.
    pub workers: usize,
    /// Jobs waiting (queued, scheduled, or failed awaiting a retry).
    pub queued: u64,
    /// Jobs running.
    pub running: u64,
    /// Whether the pool is paused (it claims nothing; `POST /v1/pools/{name}/resume`).
    #[serde(default)]
    pub paused: bool,
    /// Jobs this node claims beyond its free slots (`[[pool]] claim_ahead`; 0: none).
    #[serde(default)]
    pub claim_ahead: usize,
    /// Jobs this node holds now: claimed (`running` in the store, counted in `running`), each
    /// started when a slot frees.
    #[serde(default)]
    pub held: usize,
}

/// `GET /v1/pools`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PoolList {
    /// Every pool, by name.
    pub pools: Vec<Pool>,
}

/// The body of `POST /v1/pools/{name}/resize`. `size` is at most `[limits]
/// max_workers_per_pool` (the document served by a daemon states its configured value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Resize)]
pub struct ResizeRequest {
    /// Workers wanted.
    #[schema(minimum = 0, maximum = 64)]
    #[serde(deserialize_with = "crate::int::one")]
    pub size: u32,
}

/// The answer to a resize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Resized {
    /// The pool.
    pub name: String,
    /// Its size now.
    pub size: u32,
}

/// The answer to a recycle: the workers are being replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Recycled {
    /// The pool.
    pub name: String,
    /// How many workers it had when asked (each finishes its running jobs, then stops; its
    /// replacement starts first).
    pub workers: u32,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    pub status: String,
}
