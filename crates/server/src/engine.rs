//! The engine: routes jobs to pools, claims due jobs from the store, runs them, and records
//! their ends.
//!
//! Main loops (all tasks of [`Engine::start`]):
//! - the **dispatcher**: asks every pool for its free capacity, claims that many due jobs
//!   from the store (one call), starts them; sleeps until a submit wakes it or 100 ms pass
//!   (delayed and retried jobs become due with time);
//! - one **task per running job**: awaits its outcome and sends a `Completion`;
//! - the **completer**: batches completions into one `Store::complete` (one transaction);
//! - the **lease keeper**: renews the leases of running jobs every lease/3, re-queues expired
//!   leases of other nodes, purges old finished jobs.
//!
//! The running-job table (`running`) is the only shared state: the dispatcher inserts, a job's
//! task removes, the API reads it to cancel.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use offload_pool::{
    Algorithm, Canceller, ChildPool, JobEvent, PoolConfig, PoolEvent, RecyclePolicy, RunOptions,
    WorkerKind,
};
use offload_process::{
    ChildJob, ChildJobConfig, ExecOptions, JobKind, JobProcess, JobsDir, Outcome, ResolveError,
};
use offload_store::{
    now_ms, Claimed, Completion, Demand, JobId, JobState, Millis, NewJob, Store, StoredError,
    Submitted, Transition,
};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, Notify, Semaphore};

use crate::config::{pattern_matches, Isolation, PoolSection, ServeConfig};
use crate::error::ApiError;
use crate::events::{JobChange, JobEmitted, JobProgress, ServerEvent, WorkerChange};
use crate::metrics::Metrics;

/// How a pool runs its jobs.
enum Runner {
    Pool(ChildPool),
    Process {
        jobs: ChildJob,
        slots: Arc<Semaphore>,
    },
}

/// A pool of the daemon: its settings and its runner.
pub(crate) struct PoolEntry {
    pub(crate) name: String,
    pub(crate) kind: JobKind,
    pub(crate) section: PoolSection,
    runner: Runner,
    in_flight: AtomicUsize,
    capacity: usize,
}

impl PoolEntry {
    pub(crate) fn isolation(&self) -> Isolation {
        self.section.isolation
    }

    pub(crate) fn pool(&self) -> Option<&ChildPool> {
        match &self.runner {
            Runner::Pool(p) => Some(p),
            Runner::Process { .. } => None,
        }
    }

    pub(crate) fn running(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
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

enum Kill {
    Pool(Canceller),
    Process(JobProcess),
}

struct Running {
    kill: Option<Kill>,
}

/// The engine.
pub(crate) struct Engine {
    pub(crate) store: Arc<dyn Store>,
    cfg: ServeConfig,
    jobs_dir: JobsDir,
    pools: Mutex<HashMap<String, Arc<PoolEntry>>>,
    running: Mutex<HashMap<JobId, Running>>,
    wake: Notify,
    pub(crate) events: broadcast::Sender<ServerEvent>,
    pub(crate) metrics: Metrics,
    completions: mpsc::UnboundedSender<(Completion, Done)>,
    pool_lock: tokio::sync::Mutex<()>,
    /// Admission control of every submit (`admission.rs`).
    admission: crate::admission::Admission,
}

/// What the completer reports once a completion is durable.
struct Done {
    job: String,
    pool: String,
    state: JobState,
    attempt: u32,
}

/// A job to submit, before routing and defaults.
#[derive(Debug, Clone, Default)]
pub(crate) struct Submit {
    pub(crate) job: String,
    pub(crate) params: Value,
    pub(crate) priority: i32,
    pub(crate) run_at: Option<Millis>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) cron: Option<offload_store::CronTick>,
}

impl Submit {
    pub(crate) fn new(job: &str, params: Value) -> Self {
        Self {
            job: job.to_owned(),
            params,
            ..Self::default()
        }
    }
}

/// A job name routed: the pool and the resolved file.
pub(crate) struct Route {
    pub(crate) pool: String,
}

impl Engine {
    /// Builds the engine and starts its loops.
    pub(crate) async fn start(
        store: Arc<dyn Store>,
        cfg: ServeConfig,
        metrics: Metrics,
    ) -> Result<Arc<Self>, crate::error::ServeError> {
        let (events, _) = broadcast::channel(4096);
        let (ctx, crx) = mpsc::unbounded_channel();
        let engine = Arc::new(Self {
            store,
            jobs_dir: JobsDir::new(&cfg.jobs),
            admission: crate::admission::Admission::new(cfg.limits.clone()),
            cfg,
            pools: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            events,
            metrics,
            completions: ctx,
            pool_lock: tokio::sync::Mutex::new(()),
        });
        // A restarted single node: its running jobs were interrupted. Their attempt is counted.
        let recovered = engine.store.recover(Some(&engine.cfg.node)).await?;
        let expired = engine.store.recover(None).await?;
        if recovered + expired > 0 {
            tracing::info!(
                recovered,
                expired,
                "re-queued jobs that were running when the daemon stopped"
            );
        }
        // Pools declared in the file start now; the others on first use.
        let declared: Vec<String> = engine.cfg.pools.iter().map(|p| p.name.clone()).collect();
        for name in declared {
            engine
                .ensure_pool(&name, None)
                .await
                .map_err(|e| crate::error::ServeError::Pool {
                    pool: name.clone(),
                    reason: e.message,
                })?;
        }
        // Pools that have waiting jobs from before the restart.
        let counts = engine.store.counts().await?;
        let mut waiting: Vec<String> = counts
            .iter()
            .filter(|((_, state), n)| **n > 0 && !state.is_terminal())
            .map(|((pool, _), _)| pool.clone())
            .collect();
        waiting.dedup();
        for pool in waiting {
            if let Err(e) = engine.ensure_pool(&pool, None).await {
                tracing::error!(pool, error = %e.message, "cannot start a pool that has waiting jobs");
            }
        }
        tokio::spawn(Arc::clone(&engine).dispatcher());
        tokio::spawn(Arc::clone(&engine).completer(crx));
        tokio::spawn(Arc::clone(&engine).lease_keeper());
        Ok(engine)
    }

    pub(crate) fn config(&self) -> &ServeConfig {
        &self.cfg
    }

    /// Wakes the dispatcher (after a submit).
    pub(crate) fn notify(&self) {
        self.wake.notify_one();
    }

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

    pub(crate) fn pool(&self, name: &str) -> Option<Arc<PoolEntry>> {
        self.pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Routes a job name: validates and resolves it, picks its pool (the first `[[pool]]`
    /// whose patterns match, else `node` / `python` / `native:<job>` by its file), and makes
    /// sure that pool runs.
    pub(crate) async fn route(&self, job: &str) -> Result<Route, ApiError> {
        let resolved = self.jobs_dir.resolve(job).map_err(|e| match e {
            // Texts name paths relative to the jobs folder only (never absolute, never a
            // symlink's target): they go to clients.
            ResolveError::NotFound { .. } => ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                offload_api::ErrorCode::UnknownJob,
                format!("{e}; add the job file to the jobs folder of this daemon"),
            ),
            other => ApiError::bad_request(other.to_string()),
        })?;
        let declared = self
            .cfg
            .pools
            .iter()
            .find(|p| p.jobs.iter().any(|pat| pattern_matches(pat, job)));
        if let Some(p) = declared {
            let wanted = match p.kind.as_deref() {
                Some("node") => Some(JobKind::Node),
                Some("python") => Some(JobKind::Python),
                Some("native") => Some(JobKind::Native),
                _ => None,
            };
            if wanted.is_some_and(|k| k != resolved.kind) {
                return Err(ApiError::bad_request(format!(
                    "job {job:?} is a {:?} job, but pool {:?} runs {} workers: fix its \
                     `jobs` patterns in offload.toml",
                    resolved.kind,
                    p.name,
                    p.kind.as_deref().unwrap_or("?")
                )));
            }
        }
        let pool = match declared {
            Some(p) => p.name.clone(),
            None => match resolved.kind {
                JobKind::Node => "node".to_owned(),
                JobKind::Python => "python".to_owned(),
                _ => format!("native:{}", resolved.name),
            },
        };
        self.ensure_pool(&pool, Some(resolved.kind)).await?;
        Ok(Route { pool })
    }

    /// Routes a job and fills in its pool's defaults (timeout, attempts, backoff).
    pub(crate) async fn prepare(
        &self,
        s: Submit,
        default_attempts: u32,
    ) -> Result<NewJob, ApiError> {
        let route = self.route(&s.job).await?;
        let section = self.pool(&route.pool).map(|p| p.section.clone());
        let new = NewJob {
            job: s.job,
            params: s.params,
            pool: route.pool,
            priority: s.priority,
            run_at: s.run_at,
            timeout_ms: s
                .timeout_ms
                .or_else(|| section.as_ref().and_then(|p| p.timeout_ms)),
            max_attempts: s
                .max_attempts
                .or_else(|| section.as_ref().and_then(|p| p.max_attempts))
                .unwrap_or(default_attempts)
                .max(1),
            backoff_ms: section.as_ref().and_then(|p| p.backoff_ms).unwrap_or(1000),
            idempotency_key: s.idempotency_key,
            cron: s.cron,
        };
        // Every path (HTTP, batch, line protocol, cron) comes through here.
        crate::limits::check_job(&new, self.cfg.max_timeout_ms)?;
        Ok(new)
    }

    /// Commits prepared jobs (one transaction), then counts them, announces them on the event
    /// stream and wakes the dispatcher. Answers only once they are durable.
    pub(crate) async fn commit(&self, jobs: Vec<NewJob>) -> Result<Vec<Submitted>, ApiError> {
        self.admission.admit(&*self.store, &jobs).await?;
        let done = self
            .store
            .submit(jobs.clone(), self.cfg.idempotency_window)
            .await?;
        let fresh: Vec<(&NewJob, &Submitted)> = jobs
            .iter()
            .zip(&done)
            .filter(|(_, d)| !d.duplicate)
            .collect();
        self.metrics.submitted(fresh.len() as u64);
        for (j, d) in fresh {
            let _ = self.events.send(ServerEvent::Job(JobChange {
                id: d.id,
                job: j.job.clone(),
                pool: j.pool.clone(),
                state: d.state,
                attempt: 0,
            }));
        }
        self.notify();
        Ok(done)
    }

    /// Prepares and commits one job with the defaults (the line protocol's path).
    pub(crate) async fn submit_one(
        &self,
        job: &str,
        params: Value,
        max_attempts: u32,
    ) -> Result<Submitted, ApiError> {
        let new = self.prepare(Submit::new(job, params), max_attempts).await?;
        self.commit(vec![new])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::internal("the store returned no job"))
    }

    /// Starts pool `name` if it does not run yet.
    pub(crate) async fn ensure_pool(
        &self,
        name: &str,
        kind_hint: Option<JobKind>,
    ) -> Result<Arc<PoolEntry>, ApiError> {
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
        let entry = self.start_pool(section, kind, program).await?;
        let entry = Arc::new(entry);
        self.pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), Arc::clone(&entry));
        if let Some(pool) = entry.pool() {
            tokio::spawn(forward_worker_events(
                name.to_owned(),
                pool.events(),
                self.events.clone(),
                self.metrics.clone(),
            ));
        }
        self.notify();
        Ok(entry)
    }

    fn pool_kind(
        &self,
        section: &PoolSection,
        hint: Option<JobKind>,
    ) -> Result<(JobKind, Option<PathBuf>), ApiError> {
        if let Some(name) = section.name.strip_prefix("native:") {
            let resolved = self
                .jobs_dir
                .resolve_kind(name, JobKind::Native)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
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
                    ApiError::bad_request(format!(
                        "pool {:?} has no `kind` and no job decided it yet",
                        section.name
                    ))
                })?,
            },
        };
        let program = match kind {
            JobKind::Native => Some(section.program.clone().ok_or_else(|| {
                ApiError::bad_request(format!(
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
    ) -> Result<PoolEntry, ApiError> {
        let name = section.name.clone();
        let min = section.min.unwrap_or(0);
        let max = section.max.unwrap_or(2).max(1);
        let concurrency = section.concurrency.unwrap_or(1).max(1);
        let capacity = max * concurrency as usize;
        let runner = match section.isolation {
            Isolation::Process => Runner::Process {
                jobs: ChildJob::new(
                    ChildJobConfig::with_jobs_dir(&self.cfg.jobs)
                        .handle_signals(false)
                        .env_policy(crate::job_env::policy(&self.cfg)),
                ),
                slots: Arc::new(Semaphore::new(max)),
            },
            Isolation::Pool => {
                let worker = match (kind, &program) {
                    (JobKind::Node, _) => WorkerKind::Node,
                    (JobKind::Python, _) => WorkerKind::Python,
                    (_, Some(p)) => WorkerKind::Program(p.clone()),
                    (_, None) => {
                        return Err(ApiError::bad_request("a native pool needs a program"))
                    }
                };
                let mut pc = PoolConfig::new(worker, &self.cfg.jobs)
                    .size(min.min(max), max)
                    .concurrency(concurrency)
                    .handle_signals(false);
                pc.name = name.clone();
                pc.env_policy = crate::job_env::policy(&self.cfg);
                if let Some(a) = &section.algorithm {
                    pc.algorithm = a
                        .parse::<Algorithm>()
                        .map_err(|e| ApiError::bad_request(format!("pool {name:?}: {e}")))?;
                }
                // The store owns retries (with backoff, durable): one attempt per claim.
                pc.retry.max_attempts = 1;
                pc.queue_bound = capacity.max(1) * 4;
                pc.recycle = RecyclePolicy {
                    after_jobs: section.recycle_after_jobs,
                    max_rss: section.max_rss_mb.map(|mb| mb << 20),
                    max_age: section.max_age_s.map(Duration::from_secs),
                };
                pc.idle_timeout = Some(Duration::from_secs(section.idle_timeout_s.unwrap_or(300)));
                let pool = ChildPool::start(pc)
                    .await
                    .map_err(|e| ApiError::internal(format!("pool {name:?} cannot start: {e}")))?;
                Runner::Pool(pool)
            }
        };
        tracing::info!(pool = %name, ?kind, min, max, concurrency, "pool started");
        Ok(PoolEntry {
            name,
            kind,
            section,
            runner,
            in_flight: AtomicUsize::new(0),
            capacity,
        })
    }

    // ---- dispatcher -----------------------------------------------------------------------

    async fn dispatcher(self: Arc<Self>) {
        loop {
            let demand: Vec<Demand> = self
                .pools()
                .iter()
                .filter_map(|p| {
                    let free = p.capacity.saturating_sub(p.running());
                    (free > 0).then(|| Demand {
                        pool: p.name.clone(),
                        n: free,
                    })
                })
                .collect();
            let mut claimed = Vec::new();
            if !demand.is_empty() {
                match self
                    .store
                    .claim(&self.cfg.node, &demand, self.cfg.lease)
                    .await
                {
                    Ok(c) => claimed = c,
                    Err(e) => tracing::error!(error = %e, "claim failed"),
                }
            }
            let got = claimed.len();
            for c in claimed {
                self.start_job(c);
            }
            if got == 0 {
                let _ =
                    tokio::time::timeout(Duration::from_millis(100), self.wake.notified()).await;
            }
        }
    }

    fn start_job(self: &Arc<Self>, c: Claimed) {
        if c.attempt > c.max_attempts {
            // Every attempt ended with its daemon gone (a job that takes its node down, say):
            // recovery re-queued it once more than allowed. Do not run it again.
            let now = now_ms();
            let completion = Completion {
                id: c.id,
                attempt: c.attempt,
                node: self.cfg.node.clone(),
                pid: None,
                started_at: now,
                ended_at: now,
                outcome: "attempts_exhausted".into(),
                then: Transition::Dead {
                    error: StoredError {
                        name: "AttemptsExhausted".into(),
                        message: format!(
                            "{} attempts were interrupted (their daemon stopped or lost its lease)",
                            c.max_attempts
                        ),
                        stack: None,
                    },
                },
            };
            let done = Done {
                job: c.job,
                pool: c.pool,
                state: JobState::Dead,
                attempt: c.attempt,
            };
            let _ = self.completions.send((completion, done));
            return;
        }
        let Some(entry) = self.pool(&c.pool) else {
            tracing::error!(pool = %c.pool, id = %c.id, "claimed a job of an unknown pool");
            return;
        };
        entry.in_flight.fetch_add(1, Ordering::Relaxed);
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(c.id, Running { kill: None });
        let _ = self.events.send(ServerEvent::Job(JobChange {
            id: c.id,
            job: c.job.clone(),
            pool: c.pool.clone(),
            state: JobState::Running,
            attempt: c.attempt,
        }));
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            let started = now_ms();
            let (outcome, pid) = engine.run_one(&entry, &c).await;
            entry.in_flight.fetch_sub(1, Ordering::Relaxed);
            let cancelled = engine
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&c.id)
                .is_none();
            engine.notify();
            let ended = now_ms();
            let outcome = if cancelled && !outcome.is_success() {
                Outcome::Cancelled
            } else {
                outcome
            };
            engine.metrics.finished(
                &c.pool,
                outcome.kind(),
                ms_to_s(started.saturating_sub(c.run_at)),
                ms_to_s(ended.saturating_sub(started)),
            );
            let then = transition(&outcome, &c);
            let state = match &then {
                Transition::Succeeded { .. } => JobState::Succeeded,
                Transition::Retry { .. } => JobState::Failed,
                Transition::Dead { .. } => JobState::Dead,
                Transition::Cancelled => JobState::Cancelled,
            };
            let completion = Completion {
                id: c.id,
                attempt: c.attempt,
                node: engine.cfg.node.clone(),
                pid,
                started_at: started,
                ended_at: ended,
                outcome: outcome.kind().to_owned(),
                then,
            };
            let done = Done {
                job: c.job.clone(),
                pool: c.pool.clone(),
                state,
                attempt: c.attempt,
            };
            let _ = engine.completions.send((completion, done));
        });
    }

    async fn run_one(&self, entry: &PoolEntry, c: &Claimed) -> (Outcome, Option<u32>) {
        let timeout = c.timeout_ms.map(Duration::from_millis);
        match &entry.runner {
            Runner::Pool(pool) => {
                let mut opts = RunOptions::default().max_attempts(1).with_events();
                if let Some(t) = timeout {
                    opts = opts.timeout(t);
                }
                let mut handle = match pool.run_with(&c.job, c.params.clone(), opts).await {
                    Ok(h) => h,
                    Err(e) => {
                        return (
                            Outcome::Failed {
                                name: "NotRunnable".into(),
                                message: self.client_text(&e.to_string()),
                                stack: None,
                            },
                            None,
                        )
                    }
                };
                self.set_kill(c.id, Kill::Pool(handle.canceller()));
                let events = handle.events();
                let forward = tokio::spawn(forward_progress(
                    c.id,
                    Arc::clone(&self.store),
                    self.events.clone(),
                    events.map(JobEvents::Pool),
                    self.cfg.http.max_event_bytes,
                    self.metrics.clone(),
                ));
                let result = handle.result().await;
                finish_progress(c.id, &self.store, forward).await;
                let pid = result.attempts.last().map(|a| a.pid);
                (result.outcome, pid)
            }
            Runner::Process { jobs, slots } => {
                let Ok(_permit) = slots.acquire().await else {
                    return (Outcome::Cancelled, None);
                };
                let mut opts = ExecOptions::default();
                if let Some(t) = timeout {
                    opts = opts.timeout(t);
                }
                let process = match jobs.exec(&c.job, c.params.clone(), opts).await {
                    Ok(p) => p,
                    Err(e) => {
                        return (
                            Outcome::Failed {
                                name: "NotRunnable".into(),
                                message: self.client_text(&e.to_string()),
                                stack: None,
                            },
                            None,
                        )
                    }
                };
                let pid = process.pid();
                self.set_kill(c.id, Kill::Process(process.clone()));
                let forward = tokio::spawn(forward_progress(
                    c.id,
                    Arc::clone(&self.store),
                    self.events.clone(),
                    Some(JobEvents::Process(process.events())),
                    self.cfg.http.max_event_bytes,
                    self.metrics.clone(),
                ));
                let outcome = process.outcome().await;
                finish_progress(c.id, &self.store, forward).await;
                (outcome, Some(pid))
            }
        }
    }

    /// `text` with the jobs folder's absolute path removed (it is stored with the job, and
    /// clients read it): files are named relative to the jobs folder.
    fn client_text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        let canonical = self.jobs_dir.canonical().ok();
        for dir in canonical
            .iter()
            .map(|p| p.as_path())
            .chain([self.cfg.jobs.as_path()])
        {
            let dir = dir.display().to_string();
            if dir.starts_with('/') && dir.len() > 1 {
                out = out.replace(&format!("{dir}/"), "").replace(&dir, "<jobs>");
            }
        }
        out
    }

    fn set_kill(&self, id: JobId, kill: Kill) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.get_mut(&id) {
            Some(r) => r.kill = Some(kill),
            // Cancelled before it started: stop it now.
            None => stop(kill),
        }
    }

    /// Stops a running job (after `Store::cancel` said `Requested`). Its task records the end.
    pub(crate) fn cancel_running(&self, id: JobId) -> bool {
        let entry = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        match entry {
            Some(r) => {
                if let Some(k) = r.kill {
                    stop(k);
                }
                true
            }
            None => false,
        }
    }

    /// Waits for the end of a job, up to `wait`: one store read, then the job's terminal state
    /// change on the event broadcast (read at once, so a long poll never holds the broadcast's
    /// ring), then one read for the record. A lagging receiver reads the store again.
    pub(crate) async fn wait_for_end(
        &self,
        id: JobId,
        wait: Duration,
    ) -> Result<offload_store::JobRecord, ApiError> {
        let mut events = self.events.subscribe();
        let deadline = Instant::now() + wait;
        let rec = self.store.get(id).await?;
        if rec.state.is_terminal() || wait.is_zero() {
            return Ok(rec);
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, events.recv()).await {
                Ok(Ok(ServerEvent::Job(j))) if j.id == id && j.state.is_terminal() => break,
                Ok(Ok(_)) => {}
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    let rec = self.store.get(id).await?;
                    if rec.state.is_terminal() {
                        return Ok(rec);
                    }
                }
                Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => break,
            }
        }
        Ok(self.store.get(id).await?)
    }

    // ---- completer, progress, leases --------------------------------------------------------

    async fn completer(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<(Completion, Done)>) {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < 1000 {
                match rx.try_recv() {
                    Ok(x) => batch.push(x),
                    Err(_) => break,
                }
            }
            let (completions, dones): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let mut delay = Duration::from_millis(50);
            loop {
                match self.store.complete(completions.clone()).await {
                    Ok(()) => break,
                    Err(e) => {
                        // Never drop a completion: the job would stay `running` until its lease
                        // expires and then run again. Retry with backoff.
                        tracing::error!(error = %e, "cannot record job ends; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
            for (c, d) in completions.iter().zip(dones) {
                let _ = self.events.send(ServerEvent::Job(JobChange {
                    id: c.id,
                    job: d.job,
                    pool: d.pool,
                    state: d.state,
                    attempt: d.attempt,
                }));
            }
            // A retry may be due soon; a finished job frees capacity.
            self.notify();
        }
    }

    async fn lease_keeper(self: Arc<Self>) {
        let period = (self.cfg.lease / 3).max(Duration::from_millis(50));
        let mut tick = tokio::time::interval(period);
        let mut last_purge = Instant::now();
        loop {
            tick.tick().await;
            let ids: Vec<JobId> = self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .copied()
                .collect();
            if !ids.is_empty() {
                match self.store.renew(&self.cfg.node, &ids, self.cfg.lease).await {
                    Ok(lost) => {
                        for id in lost {
                            tracing::warn!(%id, "lost the lease of a running job; stopping it");
                            self.cancel_running(id);
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot renew leases"),
                }
            }
            match self.store.recover(None).await {
                Ok(n) if n > 0 => {
                    tracing::warn!(n, "re-queued jobs whose lease expired");
                    self.notify();
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot recover expired leases"),
            }
            if last_purge.elapsed() > Duration::from_secs(3600) {
                last_purge = Instant::now();
                let before = now_ms()
                    .saturating_sub(i64::try_from(self.cfg.retention.as_millis()).unwrap_or(0));
                match self.store.purge(before).await {
                    Ok(n) if n > 0 => tracing::info!(n, "purged finished jobs past retention"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "cannot purge"),
                }
            }
        }
    }

    /// Hot reload: job files changed under the jobs folder.
    pub(crate) async fn files_changed(&self, paths: &[PathBuf]) {
        let kinds: Vec<Option<JobKind>> = paths.iter().map(|p| kind_of(p)).collect();
        for entry in self.pools() {
            let affected = kinds.iter().any(|k| k.is_none() || *k == Some(entry.kind));
            if !affected {
                continue;
            }
            if let Some(pool) = entry.pool() {
                tracing::info!(pool = %entry.name, "job files changed: replacing workers");
                if let Err(e) = pool.recycle_all().await {
                    tracing::warn!(pool = %entry.name, error = %e, "cannot recycle");
                }
            }
        }
    }

    /// Stops every pool gracefully.
    pub(crate) async fn shutdown(&self, deadline: Duration) {
        let pools = self.pools();
        let mut waits = Vec::new();
        for p in &pools {
            match &p.runner {
                Runner::Pool(pool) => {
                    let pool = pool.clone();
                    waits.push(tokio::spawn(async move { pool.shutdown(deadline).await }));
                }
                Runner::Process { jobs, .. } => {
                    let jobs = jobs.clone();
                    waits.push(tokio::spawn(async move { jobs.kill_all().await }));
                }
            }
        }
        for w in waits {
            let _ = w.await;
        }
    }
}

/// A running job's event stream.
enum JobEvents {
    Pool(broadcast::Receiver<JobEvent>),
    Process(broadcast::Receiver<offload_process::ProcessEvent>),
}

/// What a job's progress forwarder saw: the latest value and the one last stored.
type ProgressSeen = (Option<Value>, Option<Value>);

/// Forwards a job's progress and events to SSE, and stores its progress at most every 200 ms,
/// until the job's end event. A value over `max_event` bytes of JSON is replaced by a marker
/// (`crate::events::capped`).
async fn forward_progress(
    id: JobId,
    store: Arc<dyn Store>,
    sse: broadcast::Sender<ServerEvent>,
    events: Option<JobEvents>,
    max_event: usize,
    metrics: crate::metrics::Metrics,
) -> ProgressSeen {
    let mut latest: Option<Value> = None;
    let mut written: Option<Value> = None;
    let mut last_write: Option<Instant> = None;
    let Some(mut events) = events else {
        return (latest, written);
    };
    loop {
        let (progress, emitted, end) = match &mut events {
            JobEvents::Pool(rx) => match rx.recv().await {
                Ok(JobEvent::Progress { data, .. }) => (Some(data), None, false),
                Ok(JobEvent::Event { name, data, .. }) => (None, Some((name, data)), false),
                Ok(JobEvent::Finished { .. }) | Err(broadcast::error::RecvError::Closed) => {
                    (None, None, true)
                }
                _ => (None, None, false),
            },
            JobEvents::Process(rx) => match rx.recv().await {
                Ok(offload_process::ProcessEvent::Progress { data, .. }) => {
                    (Some(data), None, false)
                }
                Ok(offload_process::ProcessEvent::Event { name, data, .. }) => {
                    (None, Some((name, data)), false)
                }
                Ok(offload_process::ProcessEvent::Exited { .. })
                | Err(broadcast::error::RecvError::Closed) => (None, None, true),
                _ => (None, None, false),
            },
        };
        if end {
            return (latest, written);
        }
        let cap = |d: Value| {
            let (d, replaced) = crate::events::capped(d, max_event);
            if replaced {
                metrics.event_capped();
            }
            d
        };
        let progress = progress.map(cap);
        let emitted = emitted.map(|(n, d)| (n, cap(d)));
        if let Some((name, data)) = emitted {
            let _ = sse.send(ServerEvent::JobEvent(JobEmitted { id, name, data }));
        }
        if let Some(data) = progress {
            let _ = sse.send(ServerEvent::Progress(JobProgress {
                id,
                data: data.clone(),
            }));
            latest = Some(data);
            if last_write.is_none_or(|t| t.elapsed() >= Duration::from_millis(200)) {
                last_write = Some(Instant::now());
                if store
                    .progress(vec![(id, latest.clone().unwrap_or(Value::Null))])
                    .await
                    .is_ok()
                {
                    written.clone_from(&latest);
                }
            }
        }
    }
}

/// Waits for a job's forwarder to see its end (briefly), then stores its last progress value
/// before the completion is recorded.
async fn finish_progress(
    id: JobId,
    store: &Arc<dyn Store>,
    forward: tokio::task::JoinHandle<ProgressSeen>,
) {
    let abort = forward.abort_handle();
    let seen = match tokio::time::timeout(Duration::from_secs(3), forward).await {
        Ok(Ok(seen)) => seen,
        _ => {
            abort.abort();
            return;
        }
    };
    if let (Some(latest), written) = seen {
        if written.as_ref() != Some(&latest) {
            if let Err(e) = store.progress(vec![(id, latest)]).await {
                tracing::warn!(%id, error = %e, "cannot record the last progress");
            }
        }
    }
}

fn stop(kill: Kill) {
    match kill {
        Kill::Pool(c) => c.cancel(),
        Kill::Process(p) => p.start_kill(Duration::from_secs(2)),
    }
}

fn kind_of(path: &Path) -> Option<JobKind> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("js" | "mjs" | "cjs") => Some(JobKind::Node),
        Some("py") => Some(JobKind::Python),
        _ => None,
    }
}

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
        recycle_after_jobs: None,
        max_rss_mb: None,
        max_age_s: None,
        idle_timeout_s: Some(300),
        isolation: Isolation::Pool,
    }
}

fn ms_to_s(ms: Millis) -> f64 {
    ms.max(0) as f64 / 1000.0
}

fn error_of(outcome: &Outcome) -> StoredError {
    match outcome {
        Outcome::Failed {
            name,
            message,
            stack,
        } => StoredError {
            name: name.clone(),
            message: message.clone(),
            stack: stack.clone(),
        },
        other => StoredError {
            name: match other {
                Outcome::TimedOut => "TimedOut",
                Outcome::Killed { .. } => "Killed",
                Outcome::Crashed { .. } => "Crashed",
                Outcome::Exited { .. } => "Exited",
                Outcome::ProtocolError { .. } => "ProtocolError",
                Outcome::ResourceLimit { .. } => "ResourceLimit",
                _ => "Error",
            }
            .to_owned(),
            message: other.to_string(),
            stack: None,
        },
    }
}

/// What a finished attempt does to the job: success, cancel, a retry with backoff while
/// attempts remain, else dead. Jobs that cannot run at all are not retried.
fn transition(outcome: &Outcome, c: &Claimed) -> Transition {
    match outcome {
        Outcome::Succeeded { value } => Transition::Succeeded {
            result: value.clone(),
        },
        Outcome::Cancelled => Transition::Cancelled,
        Outcome::Failed { name, .. } if name == "NotRunnable" || name == "JobNotFound" => {
            Transition::Dead {
                error: error_of(outcome),
            }
        }
        other if c.attempt < c.max_attempts => Transition::Retry {
            error: error_of(other),
            run_at: crate::limits::retry_at(now_ms(), c.backoff_ms, c.attempt),
        },
        other => Transition::Dead {
            error: error_of(other),
        },
    }
}

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
