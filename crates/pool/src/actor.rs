//! The pool's actor: one task owns every piece of pool state (workers, queue, bindings,
//! timers, the balancer). Handles send [`Msg`]s; worker processes report through a reliable
//! sink of [`ProcessEvent`]s. See `docs/design/pool.md`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use offload_balance::{LoadBalancer, LoadSample, Pick, PickContext, Target, TargetId};
use offload_process::{
    start_process, ErrorInfo, JobKind, JobProcess, Outcome, ProcessEvent, ProcessOptions,
};
use offload_protocol::{Broadcast, Cancel, Run, Shutdown, ToWorker};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

mod contain;

use crate::config::{PoolConfig, WorkerKind};
use crate::error::StartError;
use crate::pool::RunOptions;
use crate::procfs;
pub(crate) use crate::shared::Shared;
use crate::timers::{Key, Timers};
use crate::types::{
    Attempt, JobEvent, JobId, JobResult, PoolEvent, RecycleReason, WorkerHealth, WorkerState,
};

/// A job as submitted.
pub(crate) struct Submission {
    pub(crate) id: JobId,
    pub(crate) name: String,
    pub(crate) path: Option<String>,
    pub(crate) params: Value,
    pub(crate) opts: RunOptions,
    pub(crate) reply: oneshot::Sender<JobResult>,
    pub(crate) events: Option<broadcast::Sender<JobEvent>>,
    pub(crate) permit: OwnedSemaphorePermit,
}

/// Messages from the handles.
pub(crate) enum Msg {
    Submit(Box<Submission>),
    Cancel(JobId),
    Query(Query),
    Shutdown {
        deadline: Duration,
        reply: oneshot::Sender<()>,
    },
    Kill {
        reply: Option<oneshot::Sender<()>>,
    },
}

/// Questions and commands that need an answer.
pub(crate) enum Query {
    Health(oneshot::Sender<Vec<WorkerHealth>>),
    Queued(oneshot::Sender<usize>),
    Bound {
        key: String,
        reply: oneshot::Sender<Option<JobProcess>>,
    },
    Resize {
        n: usize,
        reply: oneshot::Sender<()>,
    },
    RecycleAll(oneshot::Sender<()>),
    Broadcast {
        name: String,
        data: Value,
        timeout: Duration,
        reply: oneshot::Sender<BTreeMap<u32, bool>>,
    },
    /// Test-only: makes the actor panic (`fault-injection` feature).
    #[cfg(feature = "fault-injection")]
    Panic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// A job's attempt ran past its timeout.
    JobTimeout { id: JobId, pid: u32 },
    /// A cancelled or timed-out job had its grace: kill its worker if it still runs it.
    CancelGrace { id: JobId, pid: u32 },
    /// A delayed retry is due.
    Retry(JobId),
    /// A respawn delayed by the restart backoff is due.
    Respawn,
    /// A stopping worker had its grace: kill it.
    StopGrace(u32),
    /// A broadcast's time is up.
    Broadcast(u64),
    /// `start` waited long enough.
    StartTimeout,
    /// A shutdown's drain phase is over.
    ShutdownDrain,
}

struct Job {
    id: JobId,
    name: String,
    path: Option<String>,
    params: Value,
    key: Option<String>,
    timeout: Option<Duration>,
    max_attempts: u32,
    attempts: Vec<Attempt>,
    killed_workers: u32,
    cancel_requested: bool,
    reply: Option<oneshot::Sender<JobResult>>,
    events: Option<broadcast::Sender<JobEvent>>,
    permit: Option<OwnedSemaphorePermit>,
}

struct InFlight {
    job: Job,
    _pick: Pick,
    started: SystemTime,
    timer: Option<Key>,
    timed_out: bool,
}

struct Worker {
    process: JobProcess,
    index: usize,
    state: WorkerState,
    spawned: Instant,
    capacity: usize,
    in_flight: HashMap<JobId, InFlight>,
    jobs_done: u64,
    failures: u64,
    rss: u64,
    cpu: f64,
    last_ticks: Option<(u64, Instant)>,
    last_error: Option<String>,
    flow_busy: bool,
    /// Its leftovers are being killed (`contain.rs`): it takes no job meanwhile.
    sweeping: bool,
    idle_since: Instant,
    /// Why the pool is stopping it, if it is.
    leaving: Option<Leaving>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaving {
    Recycled,
    /// Killed because a job ran past its grace: replaced, not a crash.
    KilledForJob,
    Shutdown,
}

/// Acks so far, and who waits for them.
type PendingBroadcast = (BTreeMap<u32, bool>, oneshot::Sender<BTreeMap<u32, bool>>);

struct SpawnResult {
    index: usize,
    result: Result<JobProcess, String>,
}

struct Stopping {
    replies: Vec<oneshot::Sender<()>>,
    /// Whether workers were told to stop (drain over).
    stopping_workers: bool,
    kill: bool,
}

struct Actor {
    /// First field, so dropped first: a panic is counted before any job's reply is dropped.
    _panic_guard: crate::supervise::PanicGuard,
    cfg: PoolConfig,
    shared: Arc<Shared>,
    events: broadcast::Sender<PoolEvent>,
    permits: Arc<Semaphore>,
    balancer: LoadBalancer,
    workers: HashMap<u32, Worker>,
    /// Worker index → pid (`Some(0)` while its spawn is in progress).
    slots: Vec<Option<u32>>,
    restarts: Vec<u32>,
    starting: usize,
    queue: VecDeque<Job>,
    delayed: HashMap<JobId, Job>,
    bindings: HashMap<String, u32>,
    timers: Timers<Timer>,
    worker_tx: mpsc::UnboundedSender<ProcessEvent>,
    spawned_tx: mpsc::UnboundedSender<SpawnResult>,
    swept_tx: mpsc::UnboundedSender<u32>,
    recent_exits: VecDeque<Instant>,
    consecutive_failures: u32,
    next_spawn_at: Option<Instant>,
    respawn_timer: bool,
    degraded: bool,
    online: Option<oneshot::Sender<Result<(), StartError>>>,
    stopping: Option<Stopping>,
    broadcasts: HashMap<u64, PendingBroadcast>,
    next_broadcast: u64,
    /// Events of processes whose spawn result has not arrived yet (the two travel on
    /// different channels, so `ready` may come first).
    early: HashMap<u32, Vec<ProcessEvent>>,
}

/// Runs the pool until it is stopped and its last worker is gone.
pub(crate) async fn run(
    cfg: PoolConfig,
    rx: &mut mpsc::UnboundedReceiver<Msg>,
    shared: Arc<Shared>,
    events: broadcast::Sender<PoolEvent>,
    permits: Arc<Semaphore>,
    accepting: Arc<AtomicBool>,
    online: Option<oneshot::Sender<Result<(), StartError>>>,
) {
    let (worker_tx, mut worker_rx) = mpsc::unbounded_channel();
    let (spawned_tx, mut spawned_rx) = mpsc::unbounded_channel();
    let (swept_tx, mut swept_rx) = mpsc::unbounded_channel();
    let balancer = LoadBalancer::new(Vec::<Target>::new(), cfg.algorithm)
        .unwrap_or_else(|_| unreachable!("an empty target list is always valid"));
    let slots = vec![None; cfg.max];
    let restarts = vec![0; cfg.max];
    let mut health = tokio::time::interval(offload_process::timer::clamp(
        cfg.health_interval.max(Duration::from_millis(10)),
    ));
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut actor = Actor {
        _panic_guard: crate::supervise::PanicGuard::new(Arc::clone(&shared)),
        shared,
        events,
        permits,
        balancer,
        workers: HashMap::new(),
        slots,
        restarts,
        starting: 0,
        queue: VecDeque::new(),
        delayed: HashMap::new(),
        bindings: HashMap::new(),
        timers: Timers::new(),
        worker_tx,
        spawned_tx,
        swept_tx,
        recent_exits: VecDeque::new(),
        consecutive_failures: 0,
        next_spawn_at: None,
        respawn_timer: false,
        degraded: false,
        online,
        stopping: None,
        broadcasts: HashMap::new(),
        next_broadcast: 1,
        early: HashMap::new(),
        cfg,
    };
    actor
        .timers
        .insert(Timer::StartTimeout, actor.cfg.start_timeout);
    actor.scale();
    actor.check_online();
    let mut handles_gone = false;
    loop {
        tokio::select! {
            biased;
            Some(ev) = worker_rx.recv() => actor.on_worker_event(ev),
            Some(sp) = spawned_rx.recv() => actor.on_spawned(sp),
            Some(pid) = swept_rx.recv() => actor.on_swept(pid),
            msg = rx.recv(), if !handles_gone => match msg {
                Some(msg) => actor.on_msg(msg),
                None => {
                    // Every handle is gone: nobody can get results any more.
                    handles_gone = true;
                    accepting.store(false, Ordering::Release);
                    actor.kill_all(None);
                }
            },
            Some(expired) = std::future::poll_fn(|cx| actor.timers.poll_expired(cx)) => {
                actor.on_timer(expired);
            }
            _ = health.tick() => actor.on_health(),
        }
        actor.dispatch();
        actor.scale();
        if actor.finished() {
            break;
        }
    }
    actor.finish_stopping();
}

fn pid_of(id: &TargetId) -> Option<u32> {
    match id {
        TargetId::Int(n) => u32::try_from(*n).ok(),
        _ => None,
    }
}

fn wire_id(id: JobId) -> String {
    format!("j{id}")
}

fn parse_wire_id(s: &str) -> Option<JobId> {
    s.strip_prefix('j')?.parse().ok()
}

fn failed(name: &str, message: impl Into<String>) -> Outcome {
    Outcome::Failed {
        name: name.into(),
        message: message.into(),
        stack: None,
    }
}

impl Actor {
    fn emit(&self, ev: PoolEvent) {
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(ev);
        }
    }

    fn emit_job(&self, job: &Job, ev: JobEvent) {
        if let Some(tx) = &job.events {
            let _ = tx.send(ev.clone());
        }
        self.emit(PoolEvent::Job(ev));
    }

    fn active_workers(&self) -> usize {
        self.workers
            .values()
            .filter(|w| matches!(w.state, WorkerState::Starting | WorkerState::Ready))
            .count()
            + self.starting
    }

    fn total_processes(&self) -> usize {
        self.workers.len() + self.starting
    }

    // ---- messages -------------------------------------------------------------------------

    fn on_msg(&mut self, msg: Msg) {
        match msg {
            Msg::Submit(s) => self.on_submit(*s),
            Msg::Cancel(id) => self.on_cancel(id),
            Msg::Query(q) => self.on_query(q),
            Msg::Shutdown { deadline, reply } => self.on_shutdown(deadline, reply),
            Msg::Kill { reply } => self.kill_all(reply),
        }
    }

    fn on_submit(&mut self, s: Submission) {
        let job = Job {
            id: s.id,
            name: s.name,
            path: s.path,
            params: s.params,
            key: s.opts.key,
            timeout: s.opts.timeout.or(self.cfg.job_timeout),
            max_attempts: s
                .opts
                .max_attempts
                .unwrap_or(self.cfg.retry.max_attempts)
                .max(1),
            attempts: Vec::new(),
            killed_workers: 0,
            cancel_requested: false,
            reply: Some(s.reply),
            events: s.events,
            permit: Some(s.permit),
        };
        if self.stopping.is_some() {
            return self.finish(job, failed("ShuttingDown", "the pool is shutting down"));
        }
        self.queue.push_back(job);
    }

    fn on_cancel(&mut self, id: JobId) {
        if let Some(pos) = self.queue.iter().position(|j| j.id == id) {
            if let Some(job) = self.queue.remove(pos) {
                self.finish(job, Outcome::Cancelled);
            }
            return;
        }
        if let Some(job) = self.delayed.remove(&id) {
            return self.finish(job, Outcome::Cancelled);
        }
        let grace = self.cfg.cancel_grace;
        let found = self
            .workers
            .iter_mut()
            .find_map(|(pid, w)| w.in_flight.get_mut(&id).map(|f| (*pid, f, &w.process)));
        if let Some((pid, flight, process)) = found {
            if !flight.job.cancel_requested {
                flight.job.cancel_requested = true;
                let _ = process.send(ToWorker::Cancel(Cancel::new(wire_id(id))));
                if let Some(k) = flight.timer.take() {
                    self.timers.remove(&k);
                }
                flight.timer = Some(self.timers.insert(Timer::CancelGrace { id, pid }, grace));
            }
        }
    }

    fn on_query(&mut self, q: Query) {
        match q {
            Query::Health(reply) => {
                let mut list: Vec<WorkerHealth> = self
                    .workers
                    .iter()
                    .map(|(&pid, w)| WorkerHealth {
                        pid,
                        index: w.index,
                        state: w.state,
                        rss: w.rss,
                        cpu: w.cpu,
                        in_flight: w.in_flight.len(),
                        jobs_done: w.jobs_done,
                        failures: w.failures,
                        restarts: self.restarts.get(w.index).copied().unwrap_or(0),
                        uptime: w.spawned.elapsed(),
                        last_error: w.last_error.clone(),
                    })
                    .collect();
                list.sort_by_key(|h| h.index);
                let _ = reply.send(list);
            }
            Query::Queued(reply) => {
                let _ = reply.send(self.queue.len() + self.delayed.len());
            }
            Query::Bound { key, reply } => {
                let pid = self.binding(&key);
                let _ = reply.send(
                    pid.and_then(|p| self.workers.get(&p))
                        .map(|w| w.process.clone()),
                );
            }
            Query::Resize { n, reply } => {
                self.resize(n);
                let _ = reply.send(());
            }
            Query::RecycleAll(reply) => {
                let pids: Vec<u32> = self.workers.keys().copied().collect();
                for pid in pids {
                    match self.workers.get(&pid).map(|w| w.state) {
                        Some(WorkerState::Ready) => self.retire(pid, RecycleReason::Reload),
                        Some(WorkerState::Starting) => self.stop_worker(pid, Leaving::Recycled),
                        _ => {}
                    }
                }
                let _ = reply.send(());
            }
            Query::Broadcast {
                name,
                data,
                timeout,
                reply,
            } => self.broadcast(name, data, timeout, reply),
            #[cfg(feature = "fault-injection")]
            Query::Panic => panic!("injected fault: the pool actor panics"),
        }
    }

    fn resize(&mut self, n: usize) {
        self.cfg.min = n;
        if n > self.cfg.max {
            self.cfg.max = n;
            self.slots.resize(n, None);
            self.restarts.resize(n, 0);
        }
        // Retire the surplus: workers still starting first, then idle ones; a busy one drains.
        let mut surplus = self.active_workers().saturating_sub(n);
        let mut candidates: Vec<(bool, usize, u32)> = self
            .workers
            .iter()
            .filter(|(_, w)| matches!(w.state, WorkerState::Starting | WorkerState::Ready))
            .map(|(&pid, w)| (w.state == WorkerState::Ready, w.in_flight.len(), pid))
            .collect();
        candidates.sort_unstable();
        for (ready, _, pid) in candidates {
            if surplus == 0 {
                break;
            }
            if ready {
                self.retire(pid, RecycleReason::Resize);
            } else {
                self.stop_worker(pid, Leaving::Recycled);
            }
            surplus -= 1;
        }
    }

    fn broadcast(
        &mut self,
        name: String,
        data: Value,
        timeout: Duration,
        reply: oneshot::Sender<BTreeMap<u32, bool>>,
    ) {
        let n = self.next_broadcast;
        self.next_broadcast += 1;
        let id = format!("b{n}");
        let mut acks = BTreeMap::new();
        for (&pid, w) in &self.workers {
            if w.state == WorkerState::Ready {
                let msg =
                    ToWorker::Event(Broadcast::new(name.clone(), data.clone(), Some(id.clone())));
                if w.process.send(msg).is_ok() {
                    acks.insert(pid, false);
                }
            }
        }
        if acks.is_empty() {
            let _ = reply.send(acks);
            return;
        }
        self.timers.insert(Timer::Broadcast(n), timeout);
        self.broadcasts.insert(n, (acks, reply));
    }

    fn on_shutdown(&mut self, deadline: Duration, reply: oneshot::Sender<()>) {
        self.permits.close();
        match &mut self.stopping {
            Some(s) => s.replies.push(reply),
            None => {
                self.stopping = Some(Stopping {
                    replies: vec![reply],
                    stopping_workers: false,
                    kill: false,
                });
                // Drain until the last quarter of the deadline (at most the kill grace is
                // kept for the workers' own shutdown).
                let stop_grace = self.cfg.kill_grace.min(deadline / 4);
                self.timers
                    .insert(Timer::ShutdownDrain, deadline.saturating_sub(stop_grace));
            }
        }
        self.maybe_stop_workers();
    }

    /// After the drain (or once nothing is left to do), every worker gets `shutdown`.
    fn maybe_stop_workers(&mut self) {
        let idle = self.queue.is_empty()
            && self.delayed.is_empty()
            && self.workers.values().all(|w| w.in_flight.is_empty());
        let Some(s) = &mut self.stopping else { return };
        if s.stopping_workers || !idle {
            return;
        }
        self.end_drain();
    }

    fn end_drain(&mut self) {
        let Some(s) = &mut self.stopping else { return };
        if s.stopping_workers {
            return;
        }
        s.stopping_workers = true;
        for job in std::mem::take(&mut self.queue) {
            self.finish(
                job,
                failed("ShuttingDown", "the pool shut down before the job ran"),
            );
        }
        for (_, job) in std::mem::take(&mut self.delayed) {
            self.finish(
                job,
                failed("ShuttingDown", "the pool shut down before the job's retry"),
            );
        }
        let pids: Vec<u32> = self.workers.keys().copied().collect();
        for pid in pids {
            self.stop_worker(pid, Leaving::Shutdown);
        }
    }

    fn kill_all(&mut self, reply: Option<oneshot::Sender<()>>) {
        self.permits.close();
        let s = self.stopping.get_or_insert(Stopping {
            replies: Vec::new(),
            stopping_workers: true,
            kill: true,
        });
        s.kill = true;
        s.stopping_workers = true;
        if let Some(r) = reply {
            s.replies.push(r);
        }
        for job in std::mem::take(&mut self.queue) {
            self.finish(
                job,
                failed("PoolKilled", "the pool was killed before the job ran"),
            );
        }
        for (_, job) in std::mem::take(&mut self.delayed) {
            self.finish(
                job,
                failed("PoolKilled", "the pool was killed before the job's retry"),
            );
        }
        for w in self.workers.values_mut() {
            w.leaving.get_or_insert(Leaving::Shutdown);
            w.state = WorkerState::Stopping;
            w.process.start_kill_with(libc::SIGKILL, Duration::ZERO);
        }
        if let Some(online) = self.online.take() {
            let _ = online.send(Err(StartError::Spawn(
                "the pool was stopped during start".into(),
            )));
        }
    }

    fn finished(&self) -> bool {
        self.stopping.is_some() && self.workers.is_empty() && self.starting == 0
    }

    fn finish_stopping(&mut self) {
        for job in std::mem::take(&mut self.queue) {
            self.finish(job, failed("ShuttingDown", "the pool stopped"));
        }
        if let Some(s) = self.stopping.take() {
            for r in s.replies {
                let _ = r.send(());
            }
        }
    }

    // ---- timers ---------------------------------------------------------------------------

    fn on_timer(&mut self, t: Timer) {
        match t {
            Timer::JobTimeout { id, pid } => {
                let grace = self.cfg.cancel_grace;
                let Some(w) = self.workers.get_mut(&pid) else {
                    return;
                };
                let Some(flight) = w.in_flight.get_mut(&id) else {
                    return;
                };
                flight.timed_out = true;
                tracing::info!(pool = %self.cfg.name, job = id, pid, "job timed out; cancelling");
                let _ = w.process.send(ToWorker::Cancel(Cancel::new(wire_id(id))));
                flight.timer = Some(self.timers.insert(Timer::CancelGrace { id, pid }, grace));
            }
            Timer::CancelGrace { id, pid } => {
                let Some(w) = self.workers.get_mut(&pid) else {
                    return;
                };
                let Some(flight) = w.in_flight.get_mut(&id) else {
                    return;
                };
                flight.timer = None;
                tracing::warn!(pool = %self.cfg.name, job = id, pid, "job ignored its cancel; killing its worker");
                w.leaving.get_or_insert(Leaving::KilledForJob);
                w.state = WorkerState::Stopping;
                let _ = self.balancer.del(&TargetId::from(pid));
                w.process.start_kill_with(libc::SIGKILL, Duration::ZERO);
            }
            Timer::Retry(id) => {
                if let Some(job) = self.delayed.remove(&id) {
                    self.queue.push_front(job);
                }
            }
            Timer::Respawn => self.respawn_timer = false,
            Timer::StopGrace(pid) => {
                if let Some(w) = self.workers.get(&pid) {
                    w.process.start_kill_with(libc::SIGKILL, Duration::ZERO);
                }
            }
            Timer::Broadcast(n) => {
                if let Some((acks, reply)) = self.broadcasts.remove(&n) {
                    let _ = reply.send(acks);
                }
            }
            Timer::StartTimeout => self.start_timed_out(),
            Timer::ShutdownDrain => self.end_drain(),
        }
    }

    fn start_timed_out(&mut self) {
        let Some(online) = self.online.take() else {
            return;
        };
        let ready = self
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Ready)
            .count();
        let stderr = self
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Starting)
            .flat_map(|w| w.process.stderr_tail())
            .collect::<Vec<_>>()
            .join("\n");
        let _ = online.send(Err(StartError::Timeout {
            ready,
            min: self.cfg.min,
            waited: self.cfg.start_timeout,
            stderr,
        }));
        self.kill_all(None);
    }

    // ---- workers --------------------------------------------------------------------------

    fn on_spawned(&mut self, sp: SpawnResult) {
        self.starting = self.starting.saturating_sub(1);
        match sp.result {
            Ok(process) => {
                let pid = process.pid();
                self.slots[sp.index] = Some(pid);
                self.shared.map().insert(pid, process.clone());
                let now = Instant::now();
                self.workers.insert(
                    pid,
                    Worker {
                        process,
                        index: sp.index,
                        state: WorkerState::Starting,
                        spawned: now,
                        capacity: self.cfg.concurrency as usize,
                        in_flight: HashMap::new(),
                        jobs_done: 0,
                        failures: 0,
                        rss: 0,
                        cpu: 0.0,
                        last_ticks: None,
                        last_error: None,
                        flow_busy: false,
                        sweeping: false,
                        idle_since: now,
                        leaving: None,
                    },
                );
                self.emit(PoolEvent::WorkerSpawned {
                    pid,
                    index: sp.index,
                });
                for ev in self.early.remove(&pid).unwrap_or_default() {
                    self.on_worker_event(ev);
                }
                if self.starting == 0 {
                    self.early.clear();
                }
                if self.stopping.as_ref().is_some_and(|s| s.stopping_workers) {
                    let kill = self.stopping.as_ref().is_some_and(|s| s.kill);
                    if kill {
                        if let Some(w) = self.workers.get(&pid) {
                            w.process.start_kill_with(libc::SIGKILL, Duration::ZERO);
                        }
                    } else {
                        self.stop_worker(pid, Leaving::Shutdown);
                    }
                }
            }
            Err(e) => {
                self.slots[sp.index] = None;
                tracing::error!(pool = %self.cfg.name, error = %e, "cannot start a worker");
                if let Some(online) = self.online.take() {
                    let _ = online.send(Err(StartError::Spawn(e)));
                    self.kill_all(None);
                    return;
                }
                self.note_failure();
            }
        }
    }

    fn on_worker_event(&mut self, ev: ProcessEvent) {
        if !self.workers.contains_key(&ev.pid()) {
            if self.starting > 0 {
                self.early.entry(ev.pid()).or_default().push(ev);
            }
            return;
        }
        match ev {
            ProcessEvent::Ready { pid, ready } => {
                let Some(w) = self.workers.get_mut(&pid) else {
                    return;
                };
                if w.state != WorkerState::Starting {
                    return;
                }
                w.state = WorkerState::Ready;
                let announced = ready.concurrency.unwrap_or(1).max(1) as usize;
                w.capacity = announced.min(self.cfg.concurrency as usize);
                let weight = self.cfg.weights.get(w.index).copied().unwrap_or(1.0);
                let target = Target::new(pid)
                    .with_weight(weight)
                    .with_capacity(Some(w.capacity as u64));
                if let Err(e) = self.balancer.add(target) {
                    tracing::error!(pool = %self.cfg.name, pid, error = %e, "cannot add a worker to the balancer");
                }
                self.emit(PoolEvent::WorkerReady { pid });
                self.check_online();
                if self.stopping.is_some()
                    && self.stopping.as_ref().is_some_and(|s| s.stopping_workers)
                {
                    self.stop_worker(pid, Leaving::Shutdown);
                }
            }
            ProcessEvent::Progress { pid, id, data } => {
                let Some(job_id) = parse_wire_id(&id) else {
                    return;
                };
                if let Some(f) = self
                    .workers
                    .get(&pid)
                    .and_then(|w| w.in_flight.get(&job_id))
                {
                    self.emit_job(
                        &f.job,
                        JobEvent::Progress {
                            id: job_id,
                            pid,
                            data,
                        },
                    );
                }
            }
            ProcessEvent::Event {
                pid,
                id,
                name,
                data,
                receiver,
            } => {
                let job_id = id.as_deref().and_then(parse_wire_id);
                let flight =
                    job_id.and_then(|j| self.workers.get(&pid).and_then(|w| w.in_flight.get(&j)));
                match flight {
                    Some(f) => {
                        let ev = JobEvent::Event {
                            id: f.job.id,
                            pid,
                            name,
                            data,
                            receiver,
                        };
                        if let Some(tx) = &f.job.events {
                            let _ = tx.send(ev.clone());
                        }
                        if receiver.to_manager() {
                            self.emit(PoolEvent::Job(ev));
                        }
                    }
                    None if receiver.to_manager() => self.emit(PoolEvent::Job(JobEvent::Event {
                        id: 0,
                        pid,
                        name,
                        data,
                        receiver,
                    })),
                    None => {}
                }
            }
            ProcessEvent::Answer { pid, id, result } => self.on_answer(pid, &id, result),
            ProcessEvent::Ack { pid, id } => self.on_ack(pid, &id),
            ProcessEvent::Flow { pid, busy } => {
                if let Some(w) = self.workers.get_mut(&pid) {
                    w.flow_busy = busy;
                }
            }
            ProcessEvent::Exited { pid, outcome } => self.on_exit(pid, outcome),
            _ => {}
        }
    }

    fn on_ack(&mut self, pid: u32, id: &str) {
        let Some(n) = id.strip_prefix('b').and_then(|n| n.parse::<u64>().ok()) else {
            return;
        };
        let done = match self.broadcasts.get_mut(&n) {
            Some((acks, _)) => {
                if let Some(a) = acks.get_mut(&pid) {
                    *a = true;
                }
                acks.values().all(|a| *a)
            }
            None => false,
        };
        if done {
            if let Some((acks, reply)) = self.broadcasts.remove(&n) {
                let _ = reply.send(acks);
            }
        }
    }

    fn check_online(&mut self) {
        if self.online.is_none() {
            return;
        }
        let ready = self
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Ready)
            .count();
        if ready >= self.cfg.min {
            if let Some(online) = self.online.take() {
                let _ = online.send(Ok(()));
            }
            self.emit(PoolEvent::Online { workers: ready });
        }
    }

    fn on_answer(&mut self, pid: u32, id: &str, result: Result<Value, ErrorInfo>) {
        let Some(job_id) = parse_wire_id(id) else {
            return;
        };
        let Some(w) = self.workers.get_mut(&pid) else {
            return;
        };
        let Some(flight) = w.in_flight.remove(&job_id) else {
            tracing::debug!(pool = %self.cfg.name, pid, id, "late answer ignored");
            return;
        };
        if let Some(k) = flight.timer {
            self.timers.remove(&k);
        }
        w.jobs_done += 1;
        if w.in_flight.is_empty() {
            w.idle_since = Instant::now();
        }
        let timed_out = flight.timed_out;
        let mut job = flight.job;
        let outcome = match result {
            Ok(value) => Outcome::Succeeded { value },
            Err(_) if job.cancel_requested => Outcome::Cancelled,
            Err(e) if timed_out || e.name == "DeadlineExceeded" => Outcome::TimedOut,
            Err(e) => {
                w.failures += 1;
                w.last_error = Some(e.to_string());
                Outcome::failed(e)
            }
        };
        let recycle = self
            .cfg
            .recycle
            .after_jobs
            .is_some_and(|n| w.jobs_done >= n && w.state == WorkerState::Ready);
        let drained = w.in_flight.is_empty() && w.state == WorkerState::Draining;
        job.attempts.push(Attempt {
            pid,
            started: flight.started,
            ended: SystemTime::now(),
            outcome: outcome.clone(),
        });
        if outcome.is_success() {
            self.consecutive_failures = 0;
        }
        let retry = match &outcome {
            Outcome::TimedOut => true,
            Outcome::Failed { .. } => self.cfg.retry.on_error,
            _ => false,
        };
        if retry && job.attempts.len() < job.max_attempts as usize && self.stopping.is_none() {
            self.retry(job, outcome);
        } else {
            self.finish(job, outcome);
        }
        if recycle {
            self.retire(pid, RecycleReason::Jobs);
        } else if drained {
            self.stop_worker(pid, Leaving::Recycled);
        } else {
            self.sweep_if_idle(pid);
        }
        self.maybe_stop_workers();
    }

    fn on_exit(&mut self, pid: u32, outcome: Outcome) {
        let Some(w) = self.workers.remove(&pid) else {
            return;
        };
        self.shared.map().remove(&pid);
        let _ = self.balancer.del(&TargetId::from(pid));
        if self.slots.get(w.index).copied().flatten() == Some(pid) {
            self.slots[w.index] = None;
        }
        self.bindings.retain(|_, p| *p != pid);
        let expected = matches!(w.leaving, Some(Leaving::Recycled | Leaving::Shutdown));
        self.emit(PoolEvent::WorkerExited {
            pid,
            outcome: outcome.clone(),
            expected,
        });
        if !expected {
            tracing::warn!(pool = %self.cfg.name, pid, %outcome, "worker died");
        }
        let never_ready = w.state == WorkerState::Starting;
        let stopping = self.stopping.is_some();
        let killed_for_job = w.leaving == Some(Leaving::KilledForJob);
        for (_, flight) in w.in_flight {
            if let Some(k) = flight.timer {
                self.timers.remove(&k);
            }
            let mut job = flight.job;
            let attempt_outcome = if flight.timed_out {
                Outcome::TimedOut
            } else if job.cancel_requested {
                Outcome::Cancelled
            } else {
                outcome.clone()
            };
            if !flight.timed_out && !job.cancel_requested && !killed_for_job {
                job.killed_workers += 1;
            }
            job.attempts.push(Attempt {
                pid,
                started: flight.started,
                ended: SystemTime::now(),
                outcome: attempt_outcome.clone(),
            });
            if job.cancel_requested {
                self.finish(job, Outcome::Cancelled);
            } else if stopping {
                self.finish(job, attempt_outcome);
            } else if job.killed_workers >= self.cfg.poison_after {
                let n = job.killed_workers;
                self.finish(
                    job,
                    failed(
                        "PoisonJob",
                        format!("the job was running on {n} workers that died; not retried"),
                    ),
                );
            } else if job.attempts.len() < job.max_attempts as usize {
                self.retry(job, attempt_outcome);
            } else {
                self.finish(job, attempt_outcome);
            }
        }
        if never_ready && self.online.is_some() {
            let stderr = w.process.stderr_tail().join("\n");
            if let Some(online) = self.online.take() {
                let _ = online.send(Err(StartError::WorkerDied { outcome, stderr }));
            }
            self.kill_all(None);
            return;
        }
        if !expected && !killed_for_job && !stopping {
            self.restarts[w.index] = self.restarts[w.index].saturating_add(1);
            self.note_failure();
        } else if killed_for_job {
            self.restarts[w.index] = self.restarts[w.index].saturating_add(1);
        }
        self.maybe_stop_workers();
    }

    /// An unexpected exit or a failed spawn: back off, and watch for a crash loop.
    fn note_failure(&mut self) {
        let now = Instant::now();
        self.recent_exits.push_back(now);
        let window = self.cfg.restart.interval;
        while self
            .recent_exits
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            self.recent_exits.pop_front();
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let n = u32::try_from(self.recent_exits.len()).unwrap_or(u32::MAX);
        if n > self.cfg.restart.max_restarts && !self.degraded {
            self.degraded = true;
            tracing::error!(pool = %self.cfg.name, restarts = n, "workers die too often: pool degraded");
            self.emit(PoolEvent::Degraded { restarts: n });
        }
        let delay = if self.degraded {
            self.cfg.restart.max
        } else {
            self.cfg
                .restart
                .base
                .saturating_mul(1u32 << self.consecutive_failures.saturating_sub(1).min(20))
                .min(self.cfg.restart.max)
        };
        self.next_spawn_at = Some(now.checked_add(delay).unwrap_or(now));
        if !self.respawn_timer {
            self.respawn_timer = true;
            self.timers.insert(Timer::Respawn, delay);
        }
    }

    /// Stops dispatching to a worker; it stops when its jobs are done. A replacement starts
    /// first when the reason is recycling (the pool keeps its size).
    fn retire(&mut self, pid: u32, reason: RecycleReason) {
        let Some(w) = self.workers.get_mut(&pid) else {
            return;
        };
        if w.state != WorkerState::Ready {
            return;
        }
        w.state = WorkerState::Draining;
        let idle = w.in_flight.is_empty();
        let _ = self.balancer.del(&TargetId::from(pid));
        self.emit(PoolEvent::WorkerRecycled { pid, reason });
        if idle {
            self.stop_worker(pid, Leaving::Recycled);
        }
        // scale() starts the replacement (active workers no longer count this one).
    }

    fn stop_worker(&mut self, pid: u32, why: Leaving) {
        let grace = self.cfg.kill_grace;
        let Some(w) = self.workers.get_mut(&pid) else {
            return;
        };
        if w.state == WorkerState::Stopping {
            return;
        }
        w.leaving.get_or_insert(why);
        w.state = WorkerState::Stopping;
        let _ = self.balancer.del(&TargetId::from(pid));
        let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        if w.process
            .send(ToWorker::Shutdown(Shutdown::new(grace_ms)))
            .is_err()
        {
            w.process.start_kill_with(libc::SIGKILL, Duration::ZERO);
        }
        self.timers.insert(
            Timer::StopGrace(pid),
            grace.saturating_add(Duration::from_secs(1)),
        );
    }

    fn spawn_worker(&mut self) {
        let Some(index) = self.slots.iter().position(Option::is_none) else {
            return;
        };
        self.slots[index] = Some(0);
        self.starting += 1;
        let cfg = &self.cfg;
        let command = match &cfg.worker {
            WorkerKind::Node => cfg
                .runtimes
                .command(JobKind::Node, std::path::Path::new("")),
            WorkerKind::Python => cfg
                .runtimes
                .command(JobKind::Python, std::path::Path::new("")),
            WorkerKind::Program(p) => cfg.runtimes.command(JobKind::Native, p),
        };
        let jobs_dir = cfg
            .jobs_dir
            .canonicalize()
            .unwrap_or_else(|_| cfg.jobs_dir.clone());
        let mut opts = ProcessOptions::default();
        opts.kill_signal = cfg.kill_signal;
        opts.cancel_grace = cfg.kill_grace;
        opts.limits = cfg.limits;
        opts.max_frame = cfg.max_frame;
        opts.sink = Some(self.worker_tx.clone());
        opts.cgroup = cfg.cgroups;
        let args = cfg.args.clone();
        let env = cfg.env.clone();
        let env_policy = cfg.env_policy.clone();
        let concurrency = cfg.concurrency;
        let limits = cfg.limits;
        let tx = self.spawned_tx.clone();
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            let result = match command {
                Ok(cmd) => {
                    let mut cmd = cmd
                        .args(&args)
                        .jobs_dir(jobs_dir)
                        .env_policy(env_policy)
                        .limits(limits)
                        .env(offload_protocol::env::CONCURRENCY, concurrency.to_string())
                        // Tells ee-core's `isChildPoolJob()` (Node SDK) it runs in a pool.
                        .env("OFFLOAD_POOL", "1");
                    for (k, v) in &env {
                        cmd = cmd.env(k, v);
                    }
                    start_process(cmd, opts).await.map_err(|e| e.to_string())
                }
                Err(e) => Err(format!("cannot prepare the runtime: {e}")),
            };
            // Known to the registry and the supervisor at once, even if the actor that asked
            // for it is gone (`supervise.rs` kills what `shared` lists).
            if let Ok(p) = &result {
                shared.map().insert(p.pid(), p.clone());
            }
            if let Err(mpsc::error::SendError(SpawnResult { result: Ok(p), .. })) =
                tx.send(SpawnResult { index, result })
            {
                shared.map().remove(&p.pid());
                p.start_kill_with(libc::SIGKILL, Duration::ZERO);
            }
        });
    }

    /// Keeps the pool at `min` (with restart backoff), grows it to `max` under queue pressure,
    /// and replaces recycled workers.
    fn scale(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        let now = Instant::now();
        let backoff = self.next_spawn_at.is_some_and(|t| now < t);
        let pressure = !self.queue.is_empty() && self.free_capacity() == 0;
        let any_starting = self.starting > 0
            || self
                .workers
                .values()
                .any(|w| w.state == WorkerState::Starting);
        loop {
            let active = self.active_workers();
            let total = self.total_processes();
            let want = if active < self.cfg.min {
                true
            } else {
                pressure && active < self.cfg.max && !any_starting && self.starting == 0
            };
            if !want || total >= self.cfg.max || (backoff && self.online.is_none()) {
                break;
            }
            if self.slots.iter().all(Option::is_some) {
                break;
            }
            self.spawn_worker();
            if active + 1 >= self.cfg.min && pressure {
                break;
            }
        }
        if self.degraded && self.live_ready() == 0 && self.online.is_none() {
            // Nothing can run: jobs must not wait forever.
            for job in std::mem::take(&mut self.queue) {
                self.finish(
                    job,
                    failed("PoolDegraded", "no worker can start: the pool is degraded"),
                );
            }
        }
    }

    fn live_ready(&self) -> usize {
        self.workers
            .values()
            .filter(|w| w.state == WorkerState::Ready)
            .count()
    }

    fn free_capacity(&self) -> usize {
        self.workers
            .values()
            .filter(|w| w.state == WorkerState::Ready && !w.flow_busy && !w.sweeping)
            .map(|w| w.capacity.saturating_sub(w.in_flight.len()))
            .sum()
    }

    // ---- dispatch -------------------------------------------------------------------------

    /// The worker bound to `key`, binding one (chosen by the algorithm) when there is none.
    fn binding(&mut self, key: &str) -> Option<u32> {
        if let Some(&pid) = self.bindings.get(key) {
            if self
                .workers
                .get(&pid)
                .is_some_and(|w| matches!(w.state, WorkerState::Ready | WorkerState::Draining))
            {
                return Some(pid);
            }
            self.bindings.remove(key);
        }
        let workers = &self.workers;
        let ready = |id: &TargetId| {
            pid_of(id).is_some_and(|pid| {
                workers
                    .get(&pid)
                    .is_some_and(|w| w.state == WorkerState::Ready)
            })
        };
        let ctx = PickContext::new().with_key(key).with_filter(&ready);
        // Choose among all ready workers, full or not: binding is not dispatching.
        let pid = self
            .balancer
            .targets()
            .map(|t| t.id.clone())
            .filter(&ready)
            .collect::<Vec<_>>();
        let chosen = self
            .balancer
            .pick_one(&ctx)
            .map(|p| p.id().clone())
            .or_else(|| {
                // Everyone is at capacity: spread bindings by how many each already has.
                pid.iter()
                    .min_by_key(|id| {
                        self.bindings
                            .values()
                            .filter(|&&b| TargetId::from(b) == **id)
                            .count()
                    })
                    .cloned()
            })?;
        let pid = pid_of(&chosen)?;
        self.bindings.insert(key.to_owned(), pid);
        Some(pid)
    }

    fn dispatch(&mut self) {
        let mut i = 0;
        while i < self.queue.len() {
            if self.free_capacity() == 0 {
                break;
            }
            let pinned = match self.queue[i].key.clone() {
                Some(key) => match self.binding(&key) {
                    Some(pid) => Some(pid),
                    None => break, // no ready worker at all
                },
                None => None,
            };
            let workers = &self.workers;
            let eligible = |id: &TargetId| {
                pid_of(id).is_some_and(|pid| {
                    pinned.is_none_or(|p| p == pid)
                        && workers.get(&pid).is_some_and(|w| {
                            w.state == WorkerState::Ready && !w.flow_busy && !w.sweeping
                        })
                })
            };
            let mut ctx = PickContext::new().with_filter(&eligible);
            if let Some(p) = pinned {
                ctx = ctx.with_key(p);
            }
            let Some(pick) = self.balancer.pick_one(&ctx) else {
                if pinned.is_some() {
                    i += 1;
                    continue;
                }
                break;
            };
            let Some(pid) = pid_of(pick.id()) else {
                break;
            };
            let Some(mut job) = self.queue.remove(i) else {
                break;
            };
            job.permit = None;
            self.send_to(pid, job, pick);
        }
    }

    fn send_to(&mut self, pid: u32, job: Job, pick: Pick) {
        let mut run = Run::new(wire_id(job.id), job.name.clone(), job.params.clone());
        if let Some(path) = &job.path {
            run = run.with_path(path.clone());
        }
        if let Some(t) = job.timeout {
            run = run.with_deadline(offload_process::timer::epoch_ms_in(t));
        }
        let sent = self
            .workers
            .get(&pid)
            .is_some_and(|w| w.process.send(ToWorker::Run(run)).is_ok());
        if !sent {
            // The process is gone; its exit event will arrive. Try the job elsewhere.
            self.queue.push_front(job);
            return;
        }
        let timer = job
            .timeout
            .map(|t| self.timers.insert(Timer::JobTimeout { id: job.id, pid }, t));
        let attempt = u32::try_from(job.attempts.len() + 1).unwrap_or(u32::MAX);
        let id = job.id;
        if job.events.is_some() || self.events.receiver_count() > 0 {
            self.emit_job(&job, JobEvent::Started { id, pid, attempt });
        }
        if let Some(w) = self.workers.get_mut(&pid) {
            w.in_flight.insert(
                id,
                InFlight {
                    job,
                    _pick: pick,
                    started: SystemTime::now(),
                    timer,
                    timed_out: false,
                },
            );
        }
    }

    fn retry(&mut self, job: Job, outcome: Outcome) {
        let retry_no = u32::try_from(job.attempts.len()).unwrap_or(u32::MAX);
        let delay = self.cfg.retry.delay(retry_no, rand::random::<f64>());
        self.emit_job(
            &job,
            JobEvent::Retrying {
                id: job.id,
                outcome,
                delay,
            },
        );
        self.timers.insert(Timer::Retry(job.id), delay);
        self.delayed.insert(job.id, job);
    }

    fn finish(&self, mut job: Job, outcome: Outcome) {
        if job.events.is_some() || self.events.receiver_count() > 0 {
            self.emit_job(
                &job,
                JobEvent::Finished {
                    id: job.id,
                    outcome: outcome.clone(),
                },
            );
        }
        if let Some(reply) = job.reply.take() {
            let _ = reply.send(JobResult {
                id: job.id,
                outcome,
                attempts: std::mem::take(&mut job.attempts),
            });
        }
    }

    // ---- health ---------------------------------------------------------------------------

    fn on_health(&mut self) {
        let now = Instant::now();
        let mut samples = Vec::new();
        let mut recycle = Vec::new();
        let recycle_cfg = self.cfg.recycle;
        for (&pid, w) in &mut self.workers {
            if let Some((rss, ticks)) = procfs::sample(pid) {
                if let Some((last, at)) = w.last_ticks {
                    let secs = now.duration_since(at).as_secs_f64();
                    if secs > 0.0 {
                        w.cpu = (ticks.saturating_sub(last) as f64 / procfs::TICKS_PER_SEC) / secs
                            * 100.0;
                    }
                }
                w.last_ticks = Some((ticks, now));
                w.rss = rss;
                samples.push((pid, LoadSample::new(w.cpu, rss)));
            }
            if w.state != WorkerState::Ready {
                continue;
            }
            if recycle_cfg.max_rss.is_some_and(|max| w.rss > max) {
                recycle.push((pid, RecycleReason::Memory));
            } else if recycle_cfg
                .max_age
                .is_some_and(|age| w.spawned.elapsed() >= age)
            {
                recycle.push((pid, RecycleReason::Age));
            }
        }
        self.balancer.refresh_params(samples);
        for (pid, reason) in recycle {
            self.retire(pid, reason);
        }
        if let Some(idle) = self.cfg.idle_timeout {
            let surplus = self.active_workers().saturating_sub(self.cfg.min);
            let mut idle_workers: Vec<(Instant, u32)> = self
                .workers
                .iter()
                .filter(|(_, w)| {
                    w.state == WorkerState::Ready
                        && w.in_flight.is_empty()
                        && now.duration_since(w.idle_since) >= idle
                })
                .map(|(&pid, w)| (w.idle_since, pid))
                .collect();
            idle_workers.sort_unstable();
            if self.queue.is_empty() {
                for (_, pid) in idle_workers.into_iter().take(surplus) {
                    self.retire(pid, RecycleReason::Idle);
                }
            }
        }
        if self.degraded
            && self
                .recent_exits
                .back()
                .is_none_or(|t| now.duration_since(*t) > self.cfg.restart.interval)
        {
            self.degraded = false;
            self.recent_exits.clear();
            self.consecutive_failures = 0;
            self.next_spawn_at = None;
            self.emit(PoolEvent::Recovered);
        }
    }
}
