//! The pool's actor: one task owns every piece of pool state (workers, queue, bindings,
//! timers, the balancer). Handles send [`Msg`]s; worker processes report through a reliable
//! sink of [`ProcessEvent`]s. See `docs/design/pool.md`.
//!
//! This file is the dispatcher: the actor's state and its one `select!` loop, which routes
//! every input to the file of its role (nextest's `runner/dispatcher.rs` is the model):
//!
//! - `messages.rs`: what the handles send ([`Msg`], [`Query`], [`Submission`]) and where
//!   each goes;
//! - `jobs.rs`: the queue, dispatch to a worker, answers, cancels, timeouts, retries;
//! - `workers.rs`: spawn, ready, the events of worker processes, exit, recycle, scaling;
//! - `health.rs`: the periodic samples (CPU, RSS, recycling by memory, age, idleness) and
//!   the crash-loop detector (backoff, degraded, recovered);
//! - `shutdown.rs`: drain, stop, kill;
//! - `liveness.rs`: pings to idle workers, their pongs (heap), and replacing the unresponsive;
//! - `kill.rs`: soft and hard kills of one worker or of all, in parallel or in sequence;
//! - `broadcast.rs`: events sent to every worker and their acks;
//! - `contain.rs`: the sweep of what a job left behind;
//! - `direct.rs`: the state behind its lock, and the data path that runs on the caller's task
//!   (submit) and on the worker's reading task (answers) instead of waking this one.
//!
//! Every file adds methods to the one [`Actor`]: one state, behind one lock ([`Direct`]); the
//! `select!` loop below is the only place that waits. Submissions and answers normally do not
//! come through the loop at all: they run the same methods under the same lock where they
//! arise (`direct.rs` states the invariants).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use offload_balance::{LoadBalancer, Pick, Target, TargetId};
use offload_process::{JobProcess, Outcome, ProcessEvent};
// `broadcast` is the name of the role module below: tokio's channel is spelled out.
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

mod bindings;
mod broadcast;
mod contain;
mod defer;
mod direct;
mod health;
mod jobs;
mod kill;
mod liveness;
mod messages;
mod shutdown;
mod workers;

pub use bindings::MAX_BINDINGS;

pub(crate) use direct::Direct;
pub(crate) use messages::{Msg, Query, Submission};

use crate::config::PoolConfig;
use crate::error::StartError;
use crate::params::Params;
use crate::reply::Reply;
use crate::shared::{PanicGuard, Shared};
use crate::timers::{Key, Timers};
use crate::types::{Attempt, JobEvent, JobId, PoolEvent, WorkerState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// A soft-killed worker stayed busy past `soft_kill_busy_limit`: hard-kill it.
    SoftKillBusy(u32),
    /// A broadcast's time is up.
    Broadcast(u64),
    /// `start` waited long enough.
    StartTimeout,
    /// A shutdown's drain phase is over.
    ShutdownDrain,
    /// A `ping` had its time: the worker is unresponsive unless its `pong` came.
    PingTimeout { pid: u32, n: u64 },
}

struct Job {
    id: JobId,
    name: Arc<str>,
    path: Option<Arc<str>>,
    params: Params,
    key: Option<String>,
    /// Pinned to this worker (`RunOptions::worker`).
    worker: Option<u32>,
    /// Positional arguments (`RunOptions::args`).
    args: Option<Vec<serde_json::Value>>,
    timeout: Option<Duration>,
    max_attempts: u32,
    attempts: Vec<Attempt>,
    killed_workers: u32,
    cancel_requested: bool,
    reply: Option<Reply>,
    events: Option<tokio::sync::broadcast::Sender<JobEvent>>,
    /// Its stream has an explicit capacity: its events carry no credit (`RunOptions`).
    events_lossy: bool,
    permit: Option<OwnedSemaphorePermit>,
    on_start: Option<crate::options::OnStart>,
    /// Descriptors to pass with the run: taken by its one attempt (such a job is never
    /// retried), closed with the job otherwise.
    fds: Vec<std::os::fd::OwnedFd>,
    /// The descriptors are offered, not required (`RunOptions::fds_optional`).
    fds_optional: bool,
    /// Which descriptors are the job's streams (`run_with_streams`).
    streams: Option<offload_protocol::StreamSpec>,
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
    /// Heap figures from its last `pong`.
    heap_used: Option<u64>,
    heap_total: Option<u64>,
    /// Processes in its tree at the last sample.
    processes: usize,
    /// Health samples in a row above `max_cpu`.
    cpu_over: u32,
    /// Whether it announced `ping`.
    pings: bool,
    /// When it last answered a ping (or became ready).
    last_pong: Instant,
    /// The ping in flight: its number and when it was sent.
    ping: Option<(u64, Instant)>,
    last_ticks: Option<(u64, Instant)>,
    last_error: Option<String>,
    flow_busy: bool,
    /// A soft kill waiting for its `ready()` (it declared `busy()`): the kill's grace.
    soft_kill_waiting: Option<Duration>,
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
    /// It did not answer a ping in time: replaced, counted as a failure.
    Unresponsive,
    /// Killed on request (`kill_worker`): replaced, not a crash.
    Killed,
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
    _panic_guard: PanicGuard,
    cfg: PoolConfig,
    shared: Arc<Shared>,
    events: crate::events::PoolEvents,
    permits: Arc<Semaphore>,
    balancer: LoadBalancer,
    workers: HashMap<u32, Worker>,
    /// Worker index → pid (`Some(0)` while its spawn is in progress).
    slots: Vec<Option<u32>>,
    restarts: Vec<u32>,
    starting: usize,
    queue: VecDeque<Job>,
    delayed: HashMap<JobId, Job>,
    bindings: bindings::Bindings,
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
    /// Workers given frames in this round of `dispatch`, flushed at its end.
    to_flush: Vec<u32>,
    /// The number of the next `ping`.
    next_ping: u64,
    /// A `kill_all` in sequence: how, and the workers still to kill, in order.
    kill_sequence: Option<(crate::types::KillMode, VecDeque<u32>)>,
    /// Results decided under the lock, delivered once it is released (`direct.rs`).
    replies: RefCell<direct::Replies>,
    /// This incarnation's events in the sink not handled yet (`direct.rs`, invariant 2).
    in_sink: Arc<AtomicUsize>,
    /// Where the state lives, for the workers' answer hooks.
    direct: Weak<Direct>,
    /// Timers put off while a worker's input waits to be handled (host reading, `defer.rs`).
    deferred: HashMap<Timer, u32>,
}

/// Inputs of one kind handled in a row before the queue is dispatched again: a burst of
/// answers or submissions costs one `dispatch` (and one write per worker), not one each.
const BATCH: usize = 256;

/// Runs the pool until it is stopped and its last worker is gone.
#[expect(
    clippy::too_many_arguments,
    reason = "the pool's channels and shared parts"
)]
pub(crate) async fn run(
    cfg: PoolConfig,
    rx: &mut mpsc::UnboundedReceiver<Msg>,
    shared: Arc<Shared>,
    direct: Arc<Direct>,
    events: crate::events::PoolEvents,
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
    let in_sink = Arc::new(AtomicUsize::new(0));
    let mut actor = Actor {
        _panic_guard: PanicGuard::new(Arc::clone(&shared)),
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
        bindings: bindings::Bindings::default(),
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
        to_flush: Vec::new(),
        next_ping: 1,
        kill_sequence: None,
        replies: RefCell::new(Vec::new()),
        in_sink: Arc::clone(&in_sink),
        direct: Arc::downgrade(&direct),
        deferred: HashMap::new(),
        cfg,
    };
    actor
        .timers
        .insert(Timer::StartTimeout, actor.cfg.start_timeout);
    actor.scale();
    actor.check_online();
    direct.install(actor);
    // Takes the state out when this incarnation ends, also by a panic (then the actor's
    // `PanicGuard` counts it as the state drops, before the replies it holds are dropped).
    let _installed = Installed(&direct);
    let mut handles_gone = false;
    loop {
        tokio::select! {
            biased;
            () = direct.wake.notified() => {}
            Some(ev) = worker_rx.recv() => {
                let mut g = direct.lock();
                let Some(actor) = g.as_mut() else { break };
                in_sink.fetch_sub(1, Ordering::AcqRel);
                actor.on_worker_event(ev);
                // What else is queued, before one dispatch for the whole batch.
                for _ in 1..BATCH {
                    let Ok(ev) = worker_rx.try_recv() else { break };
                    in_sink.fetch_sub(1, Ordering::AcqRel);
                    actor.on_worker_event(ev);
                }
            }
            Some(sp) = spawned_rx.recv() => with(&direct, |a| a.on_spawned(sp)),
            Some(pid) = swept_rx.recv() => with(&direct, |a| a.on_swept(pid)),
            msg = rx.recv(), if !handles_gone => match msg {
                Some(msg) => {
                    let mut g = direct.lock();
                    let Some(actor) = g.as_mut() else { break };
                    if matches!(msg, Msg::Submit(_)) {
                        direct.received_submission();
                    }
                    actor.on_msg(msg);
                    for _ in 1..BATCH {
                        let Ok(msg) = rx.try_recv() else { break };
                        if matches!(msg, Msg::Submit(_)) {
                            direct.received_submission();
                        }
                        actor.on_msg(msg);
                    }
                }
                None => {
                    // Every handle is gone: nobody can get results any more.
                    handles_gone = true;
                    accepting.store(false, Ordering::Release);
                    with(&direct, |a| a.kill_all(None));
                }
            },
            Some(expired) = std::future::poll_fn(|cx| {
                match direct.lock().as_mut() {
                    Some(a) => a.timers.poll_expired(cx),
                    None => std::task::Poll::Ready(None),
                }
            }) => {
                with(&direct, |a| a.on_timer(expired));
            }
            _ = health.tick() => with(&direct, Actor::on_health),
        }
        let mut g = direct.lock();
        let Some(actor) = g.as_mut() else { break };
        actor.dispatch();
        actor.scale();
        let finished = actor.finished();
        if finished {
            actor.finish_stopping();
        }
        let replies = actor.replies.take();
        drop(g);
        direct::deliver(replies);
        if finished {
            break;
        }
    }
}

/// Runs `f` on the state (the actor's own task).
fn with(direct: &Direct, f: impl FnOnce(&mut Actor)) {
    if let Some(a) = direct.lock().as_mut() {
        f(a);
    }
}

/// Takes the state out of [`Direct`] when the incarnation ends.
struct Installed<'a>(&'a Direct);

impl Drop for Installed<'_> {
    fn drop(&mut self) {
        if let Some(actor) = self.0.uninstall() {
            let replies = actor.replies.take();
            drop(actor);
            direct::deliver(replies);
        }
    }
}

fn pid_of(id: &TargetId) -> Option<u32> {
    match id {
        TargetId::Int(n) => u32::try_from(*n).ok(),
        _ => None,
    }
}

/// A job's id on the channel (`j17`), written without allocating.
fn wire_id(id: JobId) -> offload_protocol::PrefixedId {
    offload_protocol::PrefixedId { prefix: "j", n: id }
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
        self.events.send(ev);
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

    /// Routes an expired timer to the role it belongs to.
    fn on_timer(&mut self, t: Timer) {
        if self.defer_for_input(t) {
            return;
        }
        match t {
            Timer::JobTimeout { id, pid } => self.on_job_timeout(id, pid),
            Timer::CancelGrace { id, pid } => self.on_cancel_grace(id, pid),
            Timer::Retry(id) => self.on_retry_due(id),
            Timer::Respawn => self.respawn_timer = false,
            Timer::StopGrace(pid) => self.on_stop_grace(pid),
            Timer::SoftKillBusy(pid) => self.on_soft_kill_busy_limit(pid),
            Timer::Broadcast(n) => self.on_broadcast_timeout(n),
            Timer::StartTimeout => self.start_timed_out(),
            Timer::ShutdownDrain => self.end_drain(),
            Timer::PingTimeout { pid, n } => self.on_ping_timeout(pid, n),
        }
    }
}
