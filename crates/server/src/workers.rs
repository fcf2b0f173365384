//! [`WorkerView`]: one resident worker as `GET /v1/workers` and `/metrics` show it.
//!
//! Built by the engine ([`Engine::workers`](crate::engine::Engine::workers)), read by the HTTP
//! API and the metrics: it lives below all three so that none of them imports another for it.

use offload_pool::{WorkerHealth, WorkerState};
use serde::Serialize;

/// A worker as `GET /v1/workers` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WorkerView {
    pub(crate) pool: String,
    pub(crate) pid: u32,
    pub(crate) index: usize,
    pub(crate) state: WorkerState,
    pub(crate) rss: u64,
    pub(crate) cpu: f64,
    pub(crate) heap_used: Option<u64>,
    pub(crate) heap_total: Option<u64>,
    pub(crate) in_flight: usize,
    pub(crate) jobs_done: u64,
    pub(crate) failures: u64,
    pub(crate) restarts: u32,
    pub(crate) uptime_ms: u64,
    pub(crate) last_error: Option<String>,
}

impl WorkerView {
    /// The view of worker `h` of `pool`.
    pub(crate) fn new(pool: String, h: WorkerHealth) -> Self {
        Self {
            pool,
            pid: h.pid,
            index: h.index,
            state: h.state,
            rss: h.rss,
            cpu: h.cpu,
            heap_used: h.heap_used,
            heap_total: h.heap_total,
            in_flight: h.in_flight,
            jobs_done: h.jobs_done,
            failures: h.failures,
            restarts: h.restarts,
            uptime_ms: u64::try_from(h.uptime.as_millis()).unwrap_or(u64::MAX),
            last_error: h.last_error,
        }
    }
}
