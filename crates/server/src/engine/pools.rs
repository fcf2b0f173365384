//! The daemon's pools: starting one on first use ([`Engine::ensure_pool`]), deciding its kind
//! and program, reading its workers ([`Engine::workers`]), forwarding its worker events to the
//! event stream, and hot reload ([`Engine::files_changed`]).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use offload_pool::{ChildPool, PoolEvent};
use offload_process::JobKind;
use offload_store::Claimed;
use tokio::sync::broadcast;

use super::runner::Runner;
use super::{Engine, EngineError};
use crate::config::{Isolation, PoolSection};
use crate::events::{ServerEvent, WorkerChange};
use crate::metrics::Metrics;
use crate::workers::WorkerView;

/// A pool of the daemon: its settings and its runner.
pub(crate) struct PoolEntry {
    pub(crate) name: String,
    pub(crate) kind: JobKind,
    pub(crate) section: PoolSection,
    pub(super) runner: Runner,
    /// Jobs of this pool running now, at most `capacity`.
    pub(super) in_flight: AtomicUsize,
    pub(super) capacity: usize,
    /// Jobs claimed beyond `capacity` (`[[pool]] claim_ahead`).
    pub(super) ahead: usize,
    /// Those jobs, in claim order: each starts when a slot frees (`dispatch.rs`).
    pub(super) held: Mutex<VecDeque<Claimed>>,
}

impl PoolEntry {
    pub(crate) fn isolation(&self) -> Isolation {
        self.section.isolation
    }

    /// The resident pool (`isolation = "pool"`), none for a process per job.
    pub(crate) fn pool(&self) -> Option<&ChildPool> {
        self.runner.pool()
    }

    pub(crate) fn running(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Jobs it claims beyond its free slots (`[[pool]] claim_ahead`).
    pub(crate) fn claim_ahead(&self) -> usize {
        self.ahead
    }

    /// Jobs held now, each waiting for a slot.
    pub(crate) fn held(&self) -> usize {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// How many more jobs the dispatcher may claim for this pool now: its free slots plus
    /// the jobs it claims ahead, less those already held.
    pub(super) fn claimable(&self) -> usize {
        (self.capacity + self.ahead).saturating_sub(self.running() + self.held())
    }

    pub(crate) fn min(&self) -> usize {
        self.section.min.unwrap_or(0)
    }

    pub(crate) fn max(&self) -> usize {
        self.section.max.unwrap_or(2)
    }

    pub(crate) fn concurrency(&self) -> u32 {
        self.section.concurrency.unwrap_or(1)
    }
}

impl Engine {
    /// Every running pool, by name.
    pub(crate) fn pools(&self) -> Vec<Arc<PoolEntry>> {
        let mut v: Vec<_> = self
            .pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Pool `name`, if it runs.
    pub(crate) fn pool(&self, name: &str) -> Option<Arc<PoolEntry>> {
        self.pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Starts pool `name` if it does not run yet.
    pub(crate) async fn ensure_pool(
        &self,
        name: &str,
        kind_hint: Option<JobKind>,
    ) -> Result<Arc<PoolEntry>, EngineError> {
        if let Some(p) = self.pool(name) {
            return Ok(p);
        }
        let _guard = self.pool_lock.lock().await;
        if let Some(p) = self.pool(name) {
            return Ok(p);
        }
        let section = self
            .cfg
            .pools
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .unwrap_or_else(|| default_section(name));
        let (kind, program) = self.pool_kind(&section, kind_hint)?;
        let entry = Arc::new(self.start_pool(section, kind, program).await?);
        self.pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), Arc::clone(&entry));
        if let Some(pool) = entry.pool() {
            let events = pool.events();
            tokio::spawn(forward_worker_events(
                name.to_owned(),
                events,
                self.events.clone(),
                self.metrics.clone(),
            ));
        }
        self.notify();
        Ok(entry)
    }

    /// The kind of pool `section` runs, and its program for a native pool: `native:<job>`
    /// pools run that job's file; others by `kind`, by name (`node`, `python`), or by the
    /// first job routed to them.
    fn pool_kind(
        &self,
        section: &PoolSection,
        hint: Option<JobKind>,
    ) -> Result<(JobKind, Option<PathBuf>), EngineError> {
        if let Some(name) = section.name.strip_prefix("native:") {
            let resolved = self
                .jobs_dir
                .resolve_kind(name, JobKind::Native)
                .map_err(|e| EngineError::Invalid(e.to_string()))?;
            return Ok((JobKind::Native, Some(resolved.path)));
        }
        let kind = match section.kind.as_deref() {
            Some("node") => JobKind::Node,
            Some("python") => JobKind::Python,
            Some("native") => JobKind::Native,
            _ => match section.name.as_str() {
                "node" => JobKind::Node,
                "python" => JobKind::Python,
                _ => hint.ok_or_else(|| {
                    EngineError::Invalid(format!(
                        "pool {:?} has no `kind` and no job decided it yet",
                        section.name
                    ))
                })?,
            },
        };
        let program = match kind {
            JobKind::Native => Some(section.program.clone().ok_or_else(|| {
                EngineError::Invalid(format!(
                    "native pool {:?} needs `program` (the worker executable)",
                    section.name
                ))
            })?),
            _ => None,
        };
        Ok((kind, program))
    }

    async fn start_pool(
        &self,
        section: PoolSection,
        kind: JobKind,
        program: Option<PathBuf>,
    ) -> Result<PoolEntry, EngineError> {
        let min = section.min.unwrap_or(0);
        let max = section.max.unwrap_or(2).max(1);
        let concurrency = section.concurrency.unwrap_or(1).max(1);
        let capacity = section.capacity();
        let ahead = section.claim_ahead();
        let runner =
            Runner::start(&self.cfg, &section, kind, program, capacity, &self.logs).await?;
        tracing::info!(pool = %section.name, ?kind, min, max, concurrency, ahead, "pool started");
        Ok(PoolEntry {
            name: section.name.clone(),
            kind,
            section,
            runner,
            in_flight: AtomicUsize::new(0),
            capacity,
            ahead,
            held: Mutex::default(),
        })
    }

    /// Every resident worker of every pool, with its health (`GET /v1/workers`, `/metrics`).
    /// A pool that does not answer is left out.
    pub(crate) async fn workers(&self) -> Vec<WorkerView> {
        let mut out = Vec::new();
        for entry in self.pools() {
            let Some(pool) = entry.pool() else { continue };
            let Ok(health) = pool.health().await else {
                continue;
            };
            out.extend(
                health
                    .into_iter()
                    .map(|h| WorkerView::new(entry.name.clone(), h)),
            );
        }
        out
    }

    /// Hot reload: job files changed under the jobs folder. Every cached route is forgotten
    /// (a file added, removed or renamed may change any name's route).
    pub(crate) async fn files_changed(&self, paths: &[PathBuf]) {
        self.routes.invalidate();
        let kinds: Vec<Option<JobKind>> = paths.iter().map(|p| kind_of(p)).collect();
        for entry in self.pools() {
            let affected = kinds.iter().any(|k| k.is_none() || *k == Some(entry.kind));
            if affected {
                entry.runner.recycle(&entry.name).await;
            }
        }
    }
}

/// The kind of a job file by its extension (`None`: could be any, e.g. a native program).
fn kind_of(path: &Path) -> Option<JobKind> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("js" | "mjs" | "cjs") => Some(JobKind::Node),
        Some("py") => Some(JobKind::Python),
        _ => None,
    }
}

/// The settings of a pool that `offload.toml` does not declare.
fn default_section(name: &str) -> PoolSection {
    PoolSection {
        name: name.to_owned(),
        jobs: Vec::new(),
        kind: None,
        program: None,
        min: Some(0),
        max: Some(2),
        concurrency: Some(1),
        algorithm: None,
        timeout_ms: None,
        max_attempts: None,
        backoff_ms: None,
        backoff: None,
        recycle_after_jobs: None,
        max_rss_mb: None,
        max_age_s: None,
        max_heap_mb: None,
        max_cpu_percent: None,
        cpu_samples: None,
        ping_interval_ms: None,
        ping_timeout_ms: None,
        idle_timeout_s: Some(300),
        isolation: Isolation::Pool,
        rate: None,
        max_running: None,
        claim_ahead: None,
    }
}

/// Forwards a pool's worker events to the event stream (`worker`), counting unexpected exits.
async fn forward_worker_events(
    pool: String,
    mut events: broadcast::Receiver<PoolEvent>,
    sse: broadcast::Sender<ServerEvent>,
    metrics: Metrics,
) {
    loop {
        let ev = match events.recv().await {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let change = match ev {
            PoolEvent::WorkerSpawned { pid, .. } => Some((pid, "spawned", None)),
            PoolEvent::WorkerReady { pid } => Some((pid, "ready", None)),
            PoolEvent::WorkerExited {
                pid,
                outcome,
                expected,
            } => {
                if !expected {
                    metrics.restart(&pool);
                }
                Some((pid, "exited", Some(outcome.to_string())))
            }
            PoolEvent::WorkerRecycled { pid, reason } => {
                Some((pid, "recycled", Some(format!("{reason:?}").to_lowercase())))
            }
            PoolEvent::WorkerUnresponsive { pid, waited } => Some((
                pid,
                "unresponsive",
                Some(format!("no pong after {} ms", waited.as_millis())),
            )),
            PoolEvent::WorkerKilled { pid, mode } => Some((
                pid,
                "killed",
                Some(match mode {
                    offload_pool::KillMode::Soft { .. } => "soft".to_owned(),
                    _ => "hard".to_owned(),
                }),
            )),
            _ => None,
        };
        if let Some((pid, event, reason)) = change {
            let _ = sse.send(ServerEvent::Worker(WorkerChange {
                pool: pool.clone(),
                pid,
                event,
                reason,
            }));
        }
    }
}
