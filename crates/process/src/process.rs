//! One worker process: its handle ([`JobProcess`]) and the actor task that owns it.
//!
//! The actor owns the tokio `Child`, the channel's reading half, the pending calls and every
//! decision about the process's end. Handles talk to it through a command queue and watch its
//! outcome through `watch` channels. A writer task owns the channel's writing half (so a worker
//! that stops reading can never block the actor), and two reader tasks turn stdout and stderr
//! into bounded log lines.
//!
//! ```text
//!   JobProcess ──commands──▶ actor ──frames──▶ writer task ──▶ fd 3 (worker)
//!        ▲                     │  ◀──frames── FrameReader  ◀── fd 3
//!        └─events/outcome──────┘  ◀──exit──── Child::wait
//! ```

use std::collections::{HashMap, VecDeque};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use offload_protocol::{
    decode_from_worker, encode, Call, Cancel, Decoded, ErrorInfo, FrameReader, FromWorker,
    ReadError, Ready, Receiver, Run, ToWorker,
};
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedReadHalf;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::contain::Containment;
pub(crate) use crate::emitter::Emitter;
use crate::guard::{ActorGuard, OnExit};
use crate::limits::ResourceLimits;
use crate::outcome::{Limit, Outcome};
use crate::spawn::{signal_group, SpawnedWorker};
use crate::timer;

/// Longest log line kept; the rest of a longer line is cut off.
pub const MAX_LOG_LINE: usize = 64 * 1024;
/// Stderr lines kept for error reports.
const STDERR_TAIL_LINES: usize = 40;
/// Events buffered per subscriber before the slowest one starts losing the oldest.
const EVENT_CAPACITY: usize = 1024;
/// How long to keep reading the channel after the process exited (its last frames).
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);
/// How long to wait for a killed group to disappear and its pipes to close.
const GONE_WAIT: Duration = Duration::from_secs(2);

/// Which output stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The job's stdout.
    Stdout,
    /// The job's stderr.
    Stderr,
}

/// Something a worker process did. Every event names the process's pid.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProcessEvent {
    /// The process was started.
    Spawned {
        /// Its pid.
        pid: u32,
        /// The job it runs, if any.
        job: Option<String>,
    },
    /// The worker's handshake arrived.
    Ready {
        /// Its pid.
        pid: u32,
        /// What it announced.
        ready: Ready,
    },
    /// A job reported progress.
    Progress {
        /// The process.
        pid: u32,
        /// The job's id.
        id: String,
        /// The progress value.
        data: Value,
    },
    /// A job emitted a named event.
    Event {
        /// The process.
        pid: u32,
        /// The job's id, if the worker said.
        id: Option<String>,
        /// The event's name.
        name: String,
        /// Its data.
        data: Value,
        /// Who it is for.
        receiver: Receiver,
    },
    /// The answer to a run or call sent with [`JobProcess::dispatch`] or [`JobProcess::send`].
    Answer {
        /// The process.
        pid: u32,
        /// The run's id.
        id: String,
        /// The value, or the error.
        result: Result<Value, ErrorInfo>,
    },
    /// The worker acknowledged a broadcast (or `shutdown`).
    Ack {
        /// The process.
        pid: u32,
        /// The broadcast's id.
        id: String,
    },
    /// Flow control: `busy: true` after the worker's `busy`, false after a later `ready`.
    Flow {
        /// The process.
        pid: u32,
        /// Whether it asked for no new jobs.
        busy: bool,
    },
    /// A line the job wrote to stdout or stderr.
    Log {
        /// The process.
        pid: u32,
        /// Which stream.
        stream: Stream,
        /// The line, without its newline, at most [`MAX_LOG_LINE`] bytes.
        line: String,
    },
    /// The process is gone; `outcome` is final.
    Exited {
        /// The process.
        pid: u32,
        /// How it ended.
        outcome: Outcome,
    },
}

impl ProcessEvent {
    /// The pid of the process the event is about.
    pub fn pid(&self) -> u32 {
        match self {
            Self::Spawned { pid, .. }
            | Self::Ready { pid, .. }
            | Self::Progress { pid, .. }
            | Self::Event { pid, .. }
            | Self::Answer { pid, .. }
            | Self::Ack { pid, .. }
            | Self::Flow { pid, .. }
            | Self::Log { pid, .. }
            | Self::Exited { pid, .. } => *pid,
        }
    }

    pub(crate) fn for_manager(&self) -> bool {
        match self {
            Self::Event { receiver, .. } => receiver.to_manager(),
            _ => true,
        }
    }

    pub(crate) fn for_process(&self) -> bool {
        match self {
            Self::Event { receiver, .. } => receiver.to_process(),
            _ => true,
        }
    }
}

/// Why a message could not be sent to a process.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SendError {
    /// The process has exited, or its channel was closed after its job ended.
    #[error("the worker process is gone or its channel is closed")]
    Closed,
    /// The process was started in command mode and has no channel.
    #[error("the process runs in command mode: it has no channel")]
    NoChannel,
    /// The message exceeds the frame limit.
    #[error(transparent)]
    Encode(#[from] offload_protocol::EncodeError),
}

/// Why a [`JobProcess::call`] failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CallError {
    /// The message could not be sent.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The function threw.
    #[error("the call failed: {0}")]
    Failed(ErrorInfo),
    /// The process ended before answering.
    #[error("the process ended before answering: {0}")]
    Ended(Outcome),
}

/// What the job process runs first.
#[derive(Debug, Clone)]
pub(crate) struct MainJob {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) path: Option<String>,
    pub(crate) params: Value,
}

/// Everything the actor needs.
struct Launch {
    pub(crate) worker: SpawnedWorker,
    pub(crate) marker: String,
    pub(crate) main: Option<MainJob>,
    /// `Some(stdin)` in command mode.
    pub(crate) command_input: Option<Vec<u8>>,
    pub(crate) max_output: usize,
    pub(crate) timeout: Option<Duration>,
    pub(crate) cancel_grace: Duration,
    pub(crate) linger: Duration,
    pub(crate) kill_signal: i32,
    pub(crate) limits: ResourceLimits,
    pub(crate) max_frame: usize,
    pub(crate) manager: Option<broadcast::Sender<ProcessEvent>>,
    pub(crate) sink: Option<mpsc::UnboundedSender<ProcessEvent>>,
    pub(crate) on_exit: Option<Box<dyn FnOnce(u32) + Send>>,
}

enum Command {
    Send(ToWorker),
    Call {
        id: String,
        msg: ToWorker,
        reply: oneshot::Sender<Result<Value, CallError>>,
    },
    Kill {
        signal: i32,
        grace: Duration,
    },
    /// A warm spare gets its one job.
    Assign {
        main: MainJob,
        timeout: Option<Duration>,
    },
    /// Test-only: makes the actor panic (`fault-injection` feature).
    #[cfg(feature = "fault-injection")]
    Panic,
}

/// A handle to one worker process. Cheap to clone; dropping handles does not kill the process
/// (its manager or the registry does).
#[derive(Debug, Clone)]
pub struct JobProcess {
    inner: Arc<HandleInner>,
}

#[derive(Debug)]
struct HandleInner {
    pid: u32,
    /// The main job, set at the start or when a warm spare is given its job.
    main: std::sync::OnceLock<(String, String)>,
    commands: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<ProcessEvent>,
    first_events: Mutex<Option<broadcast::Receiver<ProcessEvent>>>,
    outcome: watch::Receiver<Option<Outcome>>,
    exit: watch::Receiver<Option<Outcome>>,
    ready: watch::Receiver<Option<Ready>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    next_id: AtomicU64,
    kill_signal: i32,
    containment: Arc<Containment>,
}

impl JobProcess {
    pub(crate) fn containment(&self) -> &Containment {
        &self.inner.containment
    }

    /// The pid (also the process group id).
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// The job it was started for, if any.
    pub fn job(&self) -> Option<&str> {
        self.inner.main.get().map(|(_, name)| name.as_str())
    }

    /// The id of the job it was started for, if any.
    pub fn job_id(&self) -> Option<&str> {
        self.inner.main.get().map(|(id, _)| id.as_str())
    }

    /// Per-process events: progress, events for `task`/`all`, answers, log lines, exit. The
    /// first call gets every event since the spawn; later calls get events from then on. A
    /// subscriber more than 1,024 events behind loses the oldest (bounded memory).
    pub fn events(&self) -> broadcast::Receiver<ProcessEvent> {
        self.inner
            .first_events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| self.inner.events.subscribe())
    }

    /// The outcome of the job the process was started for: resolves as soon as it is known
    /// (the answer arrived, or the process ended).
    pub async fn outcome(&self) -> Outcome {
        wait_set(self.inner.outcome.clone()).await
    }

    /// The final outcome once the process and its group are gone.
    pub async fn exited(&self) -> Outcome {
        wait_set(self.inner.exit.clone()).await
    }

    /// The outcome if already known.
    pub fn try_outcome(&self) -> Option<Outcome> {
        self.inner.outcome.borrow().clone()
    }

    /// Whether the process is still running.
    pub fn is_running(&self) -> bool {
        self.inner.exit.borrow().is_none()
    }

    /// Waits for the worker's handshake; `None` if the process ended first.
    pub async fn ready(&self) -> Option<Ready> {
        let mut ready = self.inner.ready.clone();
        let mut exit = self.inner.exit.clone();
        loop {
            if let Some(r) = ready.borrow_and_update().clone() {
                return Some(r);
            }
            if exit.borrow_and_update().is_some() {
                return None;
            }
            tokio::select! {
                r = ready.changed() => if r.is_err() { return ready.borrow().clone() },
                r = exit.changed() => if r.is_err() { return None },
            }
        }
    }

    /// The last lines of stderr (at most 40), for error reports.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.inner
            .stderr_tail
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn next_id(&self) -> String {
        format!("m{}", self.inner.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends a raw protocol message. Answers to runs arrive as [`ProcessEvent::Answer`].
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] when the process is gone.
    pub fn send(&self, msg: ToWorker) -> Result<(), SendError> {
        self.inner
            .commands
            .send(Command::Send(msg))
            .map_err(|_| SendError::Closed)
    }

    /// The seed's `dispatch(cmd, jobPath, ...params)`: sends a `run` of `job` with `params` as
    /// positional arguments (ee-core's `jobParams`); returns the run's id. The answer arrives
    /// as a [`ProcessEvent::Answer`]. Only `"run"` is a command.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] when the process is gone.
    pub fn dispatch(&self, cmd: &str, job: &str, params: Vec<Value>) -> Result<String, SendError> {
        if cmd != "run" {
            return Err(SendError::Encode(offload_protocol::EncodeError::Serialize(
                serde::ser::Error::custom(format!("unknown command {cmd:?}: only \"run\" exists")),
            )));
        }
        let id = self.next_id();
        let first = params.first().cloned().unwrap_or(Value::Null);
        self.send(ToWorker::Run(
            Run::new(id.clone(), job, first).with_args(params),
        ))?;
        Ok(id)
    }

    /// ee-core's `callFunc`: calls `func` of this process's job with `args`, and waits for
    /// its answer.
    ///
    /// # Errors
    ///
    /// [`CallError`]: not sent, failed, or the process ended first.
    pub async fn call(&self, func: &str, args: Vec<Value>) -> Result<Value, CallError> {
        let id = self.next_id();
        let job = self.job().unwrap_or_default().to_owned();
        let msg = ToWorker::Call(Call::new(id.clone(), job, func, args));
        let (reply, rx) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Call { id, msg, reply })
            .map_err(|_| SendError::Closed)?;
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(CallError::Ended(self.exited().await)),
        }
    }

    /// Kills the process group: the configured signal (SIGTERM by default), then SIGKILL if
    /// the process is still alive when `grace` ends. Returns the final outcome.
    pub async fn kill(&self, grace: Duration) -> Outcome {
        self.kill_with(self.inner.kill_signal, grace).await
    }

    /// [`kill`](Self::kill) with an explicit first signal (SIGINT for seed parity).
    pub async fn kill_with(&self, signal: i32, grace: Duration) -> Outcome {
        let _ = self.inner.commands.send(Command::Kill { signal, grace });
        self.exited().await
    }

    /// Gives a process started without a job (a warm spare) its one job. `false` if it already
    /// has one or is gone.
    pub(crate) fn assign(&self, main: MainJob, timeout: Option<Duration>) -> bool {
        if self
            .inner
            .main
            .set((main.id.clone(), main.name.clone()))
            .is_err()
        {
            return false;
        }
        self.inner
            .commands
            .send(Command::Assign { main, timeout })
            .is_ok()
    }

    /// Starts a kill with the configured signal, without waiting for it.
    pub fn start_kill(&self, grace: Duration) {
        self.start_kill_with(self.inner.kill_signal, grace);
    }

    /// Starts a kill with `signal`, without waiting for it.
    pub fn start_kill_with(&self, signal: i32, grace: Duration) {
        let _ = self.inner.commands.send(Command::Kill { signal, grace });
    }

    /// Test-only fault hook: makes this process's actor panic (`guard.rs` then kills the
    /// process and publishes `SupervisorFailed`). Never use it outside tests.
    #[cfg(feature = "fault-injection")]
    #[doc(hidden)]
    pub fn inject_panic(&self) {
        let _ = self.inner.commands.send(Command::Panic);
    }
}

async fn wait_set(mut rx: watch::Receiver<Option<Outcome>>) -> Outcome {
    loop {
        if let Some(o) = rx.borrow_and_update().clone() {
            return o;
        }
        if rx.changed().await.is_err() {
            return rx.borrow().clone().unwrap_or(Outcome::ProtocolError {
                message: "the supervisor task ended unexpectedly".into(),
            });
        }
    }
}

/// How a supervised process behaves; the defaults suit a long-lived pool worker.
#[non_exhaustive]
pub struct ProcessOptions {
    /// The first signal of a kill (default SIGTERM).
    pub kill_signal: i32,
    /// After a timeout's `cancel`, how long before the group is killed (default 2 s).
    pub cancel_grace: Duration,
    /// After the main job's answer, how long the process may take to exit (default 2 s).
    pub linger: Duration,
    /// setrlimit limits (also used to recognise a resource-limit death).
    pub limits: ResourceLimits,
    /// The largest frame.
    pub max_frame: usize,
    /// A timeout for the main job.
    pub timeout: Option<Duration>,
    /// A manager-level event stream (events with receiver `job`/`all`).
    pub manager_events: Option<broadcast::Sender<ProcessEvent>>,
    /// A reliable, unbounded stream of every event but log lines (for an owner that must not
    /// miss an answer, such as a pool's actor).
    pub sink: Option<mpsc::UnboundedSender<ProcessEvent>>,
    /// Called once the process is gone, after its exit is published.
    pub on_exit: Option<Box<dyn FnOnce(u32) + Send>>,
    /// Put the process in a cgroup of its own where a writable cgroup v2 hierarchy exists
    /// (default true; `OFFLOAD_NO_CGROUP=1` turns it off for the whole supervisor).
    pub cgroup: bool,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        Self {
            kill_signal: libc::SIGTERM,
            cancel_grace: Duration::from_secs(2),
            linger: Duration::from_secs(2),
            limits: ResourceLimits::default(),
            max_frame: offload_protocol::DEFAULT_MAX_FRAME,
            timeout: None,
            manager_events: None,
            sink: None,
            on_exit: None,
            cgroup: true,
        }
    }
}

impl std::fmt::Debug for ProcessOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessOptions")
            .field("kill_signal", &self.kill_signal)
            .field("cancel_grace", &self.cancel_grace)
            .field("linger", &self.linger)
            .field("limits", &self.limits)
            .field("max_frame", &self.max_frame)
            .field("timeout", &self.timeout)
            .field("cgroup", &self.cgroup)
            .finish_non_exhaustive()
    }
}

/// What a ChildJob process is started with, beyond [`ProcessOptions`].
#[derive(Debug, Default)]
pub(crate) struct Dispatch {
    pub(crate) main: Option<MainJob>,
    /// `Some(stdin)` in command mode.
    pub(crate) command_input: Option<Vec<u8>>,
    pub(crate) max_output: usize,
}

/// Starts `cmd` as a supervised worker (its own group, death signal, markers, the lifeline
/// reaper) and returns its handle. Nothing is dispatched: send work with [`JobProcess::send`].
///
/// # Errors
///
/// [`SpawnError`](crate::SpawnError) when it cannot be started.
pub async fn start_process(
    cmd: crate::WorkerCommand,
    opts: ProcessOptions,
) -> Result<JobProcess, crate::SpawnError> {
    start(cmd, opts, Dispatch::default()).await
}

pub(crate) async fn start(
    cmd: crate::WorkerCommand,
    opts: ProcessOptions,
    dispatch: Dispatch,
) -> Result<JobProcess, crate::SpawnError> {
    crate::reaper::ensure_lifeline();
    let marker = crate::reaper::next_worker_marker();
    let worker = cmd
        .max_frame(opts.max_frame)
        .env(
            crate::reaper::SUPERVISOR_ENV,
            crate::reaper::supervisor_token(),
        )
        .env(crate::reaper::WORKER_ENV, &marker)
        .cgroup(opts.cgroup)
        .spawn()
        .await?;
    Ok(launch(Launch {
        worker,
        marker,
        main: dispatch.main,
        command_input: dispatch.command_input,
        max_output: dispatch.max_output,
        timeout: opts.timeout,
        cancel_grace: opts.cancel_grace,
        linger: opts.linger,
        kill_signal: opts.kill_signal,
        limits: opts.limits,
        max_frame: opts.max_frame,
        manager: opts.manager_events,
        sink: opts.sink,
        on_exit: opts.on_exit,
    }))
}

/// Starts the actor of a spawned worker and returns its handle.
fn launch(mut l: Launch) -> JobProcess {
    let pid = l.worker.pid;
    let containment = Arc::new(Containment::new(
        pid,
        std::mem::take(&mut l.marker),
        l.worker.cgroup.take(),
    ));
    let (events, first_events) = broadcast::channel(EVENT_CAPACITY);
    // A worker with a reliable sink (a pool's) gets no buffered first subscriber: nobody may
    // ever read it, and it would hold the last 1,024 events (answers included) in memory.
    let first_events = l.sink.is_none().then_some(first_events);
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (outcome_tx, outcome_rx) = watch::channel(None);
    let (exit_tx, exit_rx) = watch::channel(None);
    let (ready_tx, ready_rx) = watch::channel(None);
    let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
    let emitter = Emitter {
        process: events.clone(),
        manager: l.manager.take(),
        sink: l.sink.take(),
    };
    emitter.emit(ProcessEvent::Spawned {
        pid,
        job: l.main.as_ref().map(|m| m.name.clone()),
    });

    let handle = JobProcess {
        inner: Arc::new(HandleInner {
            pid,
            main: {
                let cell = std::sync::OnceLock::new();
                if let Some(m) = &l.main {
                    let _ = cell.set((m.id.clone(), m.name.clone()));
                }
                cell
            },
            commands: cmd_tx,
            events,
            first_events: Mutex::new(first_events),
            outcome: outcome_rx,
            exit: exit_rx,
            ready: ready_rx,
            stderr_tail: Arc::clone(&stderr_tail),
            next_id: AtomicU64::new(1),
            kill_signal: l.kill_signal,
            containment: Arc::clone(&containment),
        }),
    };

    let stdout = l.worker.child.stdout.take();
    let stderr = l.worker.child.stderr.take();
    let stdin = l.worker.child.stdin.take();
    let mut pumps = Vec::new();
    let output = match (&l.command_input, stdout) {
        (Some(_), Some(out)) => Some(tokio::spawn(collect_output(out, l.max_output))),
        (None, Some(out)) => {
            pumps.push(tokio::spawn(pump_lines(
                out,
                Stream::Stdout,
                pid,
                emitter.clone(),
                None,
            )));
            None
        }
        _ => None,
    };
    if let Some(err) = stderr {
        pumps.push(tokio::spawn(pump_lines(
            err,
            Stream::Stderr,
            pid,
            emitter.clone(),
            Some(Arc::clone(&stderr_tail)),
        )));
    }
    if let (Some(input), Some(mut stdin)) = (l.command_input.take(), stdin) {
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
            // Dropping stdin closes it: the program sees end of input.
        });
    }

    let (reader, writer) = match l.worker.channel.take() {
        Some(ch) => {
            let (rd, wr) = ch.into_split();
            let (tx, rx) = mpsc::unbounded_channel::<Vec<u8>>();
            // Dropping the half at the end shuts the socket down for writing: EOF for the worker.
            tokio::spawn(offload_protocol::write_frames(rx, wr));
            (Some(FrameReader::new(rd, l.max_frame)), Some(tx))
        }
        None => (None, None),
    };

    let actor = Actor {
        pid,
        reader,
        writer,
        emitter,
        stderr_tail,
        outcome_tx,
        ready_tx,
        pending_calls: HashMap::new(),
        answer: None,
        protocol_error: None,
        timed_out: false,
        killed_with: None,
        kill_at: None,
        timeout_at: l.timeout.map(timer::deadline_in),
        linger_at: None,
        launch_rest: LaunchRest {
            main: l.main,
            cancel_grace: l.cancel_grace,
            linger: l.linger,
            kill_signal: l.kill_signal,
            limits: l.limits,
            max_frame: l.max_frame,
            containment,
            command_mode: output.is_some(),
        },
    };
    let on_exit: OnExit = Arc::new(Mutex::new(l.on_exit));
    let guard = ActorGuard {
        pid,
        containment: Arc::clone(&actor.launch_rest.containment),
        emitter: actor.emitter.clone(),
        outcome_tx: actor.outcome_tx.clone(),
        exit_tx: exit_tx.clone(),
        on_exit: Arc::clone(&on_exit),
    };
    let run = actor.run(
        l.worker.child,
        cmd_rx,
        Outputs {
            stdout: output,
            pumps,
        },
        exit_tx,
        on_exit,
    );
    tokio::spawn(crate::guard::guarded(run, guard));
    handle
}

/// The tasks reading the process's stdout and stderr.
struct Outputs {
    /// Command mode: the task collecting stdout.
    stdout: Option<tokio::task::JoinHandle<Vec<u8>>>,
    /// The log-line pumps.
    pumps: Vec<tokio::task::JoinHandle<()>>,
}

struct LaunchRest {
    main: Option<MainJob>,
    cancel_grace: Duration,
    linger: Duration,
    kill_signal: i32,
    limits: ResourceLimits,
    max_frame: usize,
    containment: Arc<Containment>,
    command_mode: bool,
}

struct Actor {
    pid: u32,
    reader: Option<FrameReader<OwnedReadHalf>>,
    writer: Option<mpsc::UnboundedSender<Vec<u8>>>,
    emitter: Emitter,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    outcome_tx: watch::Sender<Option<Outcome>>,
    ready_tx: watch::Sender<Option<Ready>>,
    pending_calls: HashMap<String, oneshot::Sender<Result<Value, CallError>>>,
    /// The main job's answer, once it came.
    answer: Option<Outcome>,
    protocol_error: Option<String>,
    timed_out: bool,
    /// The first signal of an explicit kill.
    killed_with: Option<i32>,
    /// When to escalate to SIGKILL.
    kill_at: Option<Instant>,
    timeout_at: Option<Instant>,
    /// After the answer: when a process that has not exited gets killed.
    linger_at: Option<Instant>,
    launch_rest: LaunchRest,
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Actor {
    async fn run(
        mut self,
        mut child: tokio::process::Child,
        mut commands: mpsc::UnboundedReceiver<Command>,
        outputs: Outputs,
        exit_tx: watch::Sender<Option<Outcome>>,
        on_exit: OnExit,
    ) {
        if !self.launch_rest.command_mode {
            self.send_main_run();
        }
        let status = loop {
            tokio::select! {
                frame = next_frame(&mut self.reader) => self.on_frame(frame),
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    // Every handle is gone; the process keeps running until its manager or
                    // the registry ends it, or its job ends.
                    None => commands = mpsc::unbounded_channel().1,
                },
                status = child.wait() => break status,
                () = sleep_until_opt(self.timeout_at) => self.on_timeout(),
                () = sleep_until_opt(self.kill_at) => self.escalate(),
                () = sleep_until_opt(self.linger_at) => {
                    self.linger_at = None;
                    self.signal(self.launch_rest.kill_signal);
                    self.kill_at = Some(timer::deadline_in(self.launch_rest.cancel_grace));
                }
            }
        };
        // The last frames may still be in the socket: read them before deciding.
        let drain_until = timer::deadline_in(DRAIN_AFTER_EXIT);
        while self.reader.is_some() {
            match tokio::time::timeout_at(drain_until, next_frame(&mut self.reader)).await {
                Ok(frame) => self.on_frame(frame),
                Err(_) => break,
            }
        }
        self.writer = None;
        // Nothing of the job may outlive it: its group, then anything carrying its marker
        // (grandchildren that left the group), then wait until they are really gone.
        let _ = signal_group(self.pid, libc::SIGKILL);
        let mut leaked = crate::reaper::kill_marked(&self.launch_rest.containment.marker);
        leaked.extend(self.launch_rest.containment.kill_cgroup().await);
        if !leaked.is_empty() {
            tracing::warn!(
                pid = self.pid,
                ?leaked,
                "the job left processes outside its group; killed them"
            );
        }
        let gone_by = timer::deadline_in(GONE_WAIT);
        while (!crate::spawn::live_group_members(self.pid).is_empty()
            || leaked.iter().any(|&p| crate::sys::pid_alive(p)))
            && Instant::now() < gone_by
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Every log line is delivered before the exit event (the pipes close once the group
        // is gone).
        for pump in outputs.pumps {
            let _ = tokio::time::timeout_at(gone_by, pump).await;
        }
        let stdout = match outputs.stdout {
            Some(h) => tokio::time::timeout_at(timer::after(gone_by, GONE_WAIT), h)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let outcome = match status {
            Ok(status) => self.decide(status, stdout),
            Err(e) => Outcome::ProtocolError {
                message: format!("cannot wait for the process: {e}"),
            },
        };
        for (_, reply) in self.pending_calls.drain() {
            let _ = reply.send(Err(CallError::Ended(outcome.clone())));
        }
        tracing::debug!(pid = self.pid, %outcome, "worker process ended");
        self.outcome_tx.send_if_modified(|o| {
            if o.is_none() {
                *o = Some(outcome.clone());
                true
            } else {
                false
            }
        });
        let final_outcome = self.outcome_tx.borrow().clone().unwrap_or(outcome);
        let _ = exit_tx.send(Some(final_outcome.clone()));
        let on_exit = on_exit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(f) = on_exit {
            f(self.pid);
        }
        self.emitter.emit(ProcessEvent::Exited {
            pid: self.pid,
            outcome: final_outcome,
        });
    }

    /// Sends the main job's `run` (with the timeout as its deadline).
    fn send_main_run(&mut self) {
        let Some(main) = self.launch_rest.main.clone() else {
            return;
        };
        let mut run = Run::new(main.id, main.name, main.params);
        run.path = main.path;
        if let Some(at) = self.timeout_at {
            let left = at.saturating_duration_since(Instant::now());
            run = run.with_deadline(timer::epoch_ms_in(left));
        }
        if let Err(e) = self.send_frame(&ToWorker::Run(run)) {
            self.protocol_violation(format!("cannot send the job: {e}"));
        }
    }

    fn send_frame(&mut self, msg: &ToWorker) -> Result<(), SendError> {
        let writer = self.writer.as_ref().ok_or(if self.reader.is_none() {
            SendError::NoChannel
        } else {
            SendError::Closed
        })?;
        let frame = encode(msg, self.launch_rest.max_frame)?;
        writer.send(frame).map_err(|_| SendError::Closed)
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Send(msg) => {
                if let Err(e) = self.send_frame(&msg) {
                    tracing::debug!(pid = self.pid, error = %e, "message not sent");
                }
            }
            Command::Call { id, msg, reply } => match self.send_frame(&msg) {
                Ok(()) => {
                    self.pending_calls.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(CallError::Send(e)));
                }
            },
            Command::Assign { main, timeout } => {
                if self.launch_rest.main.is_some() {
                    return;
                }
                self.timeout_at = timeout.map(timer::deadline_in);
                self.launch_rest.main = Some(main);
                self.send_main_run();
            }
            #[cfg(feature = "fault-injection")]
            Command::Panic => panic!("injected fault: the process actor panics"),
            Command::Kill { signal, grace } => {
                if self.killed_with.is_none() {
                    self.killed_with = Some(signal);
                }
                self.signal(signal);
                let at = timer::deadline_in(grace);
                self.kill_at = Some(self.kill_at.map_or(at, |k| k.min(at)));
            }
        }
    }

    fn signal(&self, signal: i32) {
        if let Err(e) = signal_group(self.pid, signal) {
            tracing::warn!(pid = self.pid, signal, error = %e, "cannot signal the process group");
        }
    }

    fn escalate(&mut self) {
        self.kill_at = None;
        self.signal(libc::SIGKILL);
    }

    fn on_timeout(&mut self) {
        self.timeout_at = None;
        if self.answer.is_some() {
            return;
        }
        self.timed_out = true;
        tracing::info!(pid = self.pid, "job timed out");
        let cancel = self
            .launch_rest
            .main
            .as_ref()
            .map(|m| ToWorker::Cancel(Cancel::new(m.id.clone())));
        match cancel {
            Some(c) if !self.launch_rest.command_mode => {
                let _ = self.send_frame(&c);
                // The worker may stop the job by itself; if not, the group is killed.
                self.kill_at = Some(timer::deadline_in(self.launch_rest.cancel_grace));
            }
            _ => {
                self.signal(self.launch_rest.kill_signal);
                self.kill_at = Some(timer::deadline_in(self.launch_rest.cancel_grace));
            }
        }
    }

    fn protocol_violation(&mut self, message: String) {
        tracing::warn!(pid = self.pid, %message, "worker broke the protocol; killing it");
        if self.protocol_error.is_none() {
            self.protocol_error = Some(message);
        }
        self.reader = None;
        self.writer = None;
        self.signal(libc::SIGKILL);
    }

    fn on_frame(&mut self, frame: Result<Option<Vec<u8>>, ReadError>) {
        let line = match frame {
            Ok(Some(line)) => line,
            Ok(None) | Err(ReadError::Io(_)) => {
                // The worker closed its end (it is exiting).
                self.reader = None;
                return;
            }
            Err(e) => return self.protocol_violation(e.to_string()),
        };
        let msg = match decode_from_worker(&line) {
            Ok(Decoded::Message(m)) => m,
            Ok(Decoded::Ignored { reason }) => {
                tracing::debug!(pid = self.pid, %reason, "frame ignored");
                return;
            }
            Err(e) => return self.protocol_violation(e.to_string()),
        };
        let pid = self.pid;
        match msg {
            FromWorker::Ready(r) => {
                if let Some(v) = r.protocol {
                    if v != offload_protocol::PROTOCOL_VERSION {
                        return self.protocol_violation(format!(
                            "unsupported protocol version {v} (this supervisor speaks {})",
                            offload_protocol::PROTOCOL_VERSION
                        ));
                    }
                }
                if self.ready_tx.borrow().is_none() {
                    let _ = self.ready_tx.send(Some(r.clone()));
                    self.emitter.emit(ProcessEvent::Ready { pid, ready: r });
                } else {
                    self.emitter.emit(ProcessEvent::Flow { pid, busy: false });
                }
            }
            FromWorker::Busy => self.emitter.emit(ProcessEvent::Flow { pid, busy: true }),
            FromWorker::Progress(p) => self.emitter.emit(ProcessEvent::Progress {
                pid,
                id: p.id,
                data: p.data,
            }),
            FromWorker::Event(e) => self.emitter.emit(ProcessEvent::Event {
                pid,
                id: e.id,
                name: e.name,
                data: e.data,
                receiver: e.receiver,
            }),
            FromWorker::Result(r) => self.on_answer(r.id, Ok(r.value)),
            FromWorker::Error(e) => self.on_answer(e.id, Err(e.error)),
            FromWorker::Ack(a) => self.emitter.emit(ProcessEvent::Ack { pid, id: a.id }),
            FromWorker::Pong(_) => {}
            _ => {}
        }
    }

    fn on_answer(&mut self, id: String, result: Result<Value, ErrorInfo>) {
        if let Some(reply) = self.pending_calls.remove(&id) {
            let _ = reply.send(result.map_err(CallError::Failed));
            return;
        }
        let is_main = self.launch_rest.main.as_ref().is_some_and(|m| m.id == id);
        if !is_main {
            self.emitter.emit(ProcessEvent::Answer {
                pid: self.pid,
                id,
                result,
            });
            return;
        }
        if self.answer.is_some() {
            return;
        }
        if self.timed_out {
            // The job answered its cancel: the worker can go now, the outcome stays TimedOut.
            self.writer = None;
            return;
        }
        let outcome = match result {
            Ok(value) => Outcome::Succeeded { value },
            // The soft deadline the worker got is this job's timeout.
            Err(e) if e.name == "DeadlineExceeded" && self.timeout_at.is_some() => {
                self.timed_out = true;
                Outcome::TimedOut
            }
            Err(e) => match self.limit_from_error(&e) {
                Some(which) => Outcome::ResourceLimit { which },
                None => Outcome::failed(e),
            },
        };
        self.answer = Some(outcome.clone());
        self.timeout_at = None;
        let _ = self.outcome_tx.send(Some(outcome));
        // One job per process: let it go. SDK workers exit on end-of-file; a process still
        // alive after the linger period is killed.
        self.writer = None;
        self.linger_at = Some(timer::deadline_in(self.launch_rest.linger));
    }

    fn limit_from_error(&self, e: &ErrorInfo) -> Option<Limit> {
        let limits = &self.launch_rest.limits;
        let text = format!("{} {}", e.name, e.message);
        if limits.address_space_bytes.is_some() && looks_like_oom(&text) {
            return Some(Limit::Memory);
        }
        if limits.open_files.is_some() && looks_like_emfile(&text) {
            return Some(Limit::OpenFiles);
        }
        None
    }

    fn decide(&self, status: ExitStatus, stdout: Vec<u8>) -> Outcome {
        if let Some(a) = &self.answer {
            return a.clone();
        }
        if let Some(message) = &self.protocol_error {
            return Outcome::ProtocolError {
                message: message.clone(),
            };
        }
        if self.timed_out {
            return Outcome::TimedOut;
        }
        if let Some(sent) = self.killed_with {
            return Outcome::Killed {
                signal: status.signal().unwrap_or(sent),
            };
        }
        if let Some(which) = self.limit_from_exit(status) {
            return Outcome::ResourceLimit { which };
        }
        if self.launch_rest.command_mode && status.success() {
            let value = serde_json::from_slice::<Value>(&stdout).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&stdout).trim_end().to_owned())
            });
            return Outcome::Succeeded { value };
        }
        match (status.signal(), status.code()) {
            (Some(signal), _) => Outcome::Crashed { signal },
            (None, Some(code)) => Outcome::Exited { code },
            (None, None) => Outcome::Exited { code: -1 },
        }
    }

    fn limit_from_exit(&self, status: ExitStatus) -> Option<Limit> {
        let limits = &self.launch_rest.limits;
        let signal = status.signal();
        if signal == Some(libc::SIGXCPU) {
            return Some(Limit::Cpu);
        }
        if limits.cpu_seconds.is_some() && signal == Some(libc::SIGKILL) {
            return Some(Limit::Cpu);
        }
        let tail = self
            .stderr_tail
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .rev()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        if limits.address_space_bytes.is_some()
            && (matches!(signal, Some(libc::SIGABRT | libc::SIGSEGV | libc::SIGTRAP))
                || looks_like_oom(&tail))
        {
            return Some(Limit::Memory);
        }
        if limits.open_files.is_some() && looks_like_emfile(&tail) {
            return Some(Limit::OpenFiles);
        }
        None
    }
}

fn looks_like_oom(text: &str) -> bool {
    [
        "MemoryError",
        "out of memory",
        "Out of memory",
        "Cannot allocate memory",
        "memory allocation of",
        "Allocation failed",
        "ENOMEM",
    ]
    .iter()
    .any(|p| text.contains(p))
}

fn looks_like_emfile(text: &str) -> bool {
    text.contains("Too many open files") || text.contains("EMFILE")
}

async fn next_frame(
    reader: &mut Option<FrameReader<OwnedReadHalf>>,
) -> Result<Option<Vec<u8>>, ReadError> {
    match reader {
        Some(r) => r.next_frame().await,
        None => std::future::pending().await,
    }
}

/// Reads `out` line by line into log events (and the stderr tail), each line cut at
/// [`MAX_LOG_LINE`]; memory stays bounded however much the job writes.
async fn pump_lines<R: AsyncRead + Unpin>(
    out: R,
    stream: Stream,
    pid: u32,
    emitter: Emitter,
    tail: Option<Arc<Mutex<VecDeque<String>>>>,
) {
    let mut reader = BufReader::with_capacity(16 * 1024, out);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        let mut truncated = false;
        let mut read_any = false;
        let mut eof = false;
        // Read one line without letting it grow past the limit.
        loop {
            let buf = match reader.fill_buf().await {
                Ok(b) => b,
                Err(_) => return,
            };
            if buf.is_empty() {
                eof = true;
                break;
            }
            read_any = true;
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let content = &buf[..if done { take - 1 } else { take }];
            let room = MAX_LOG_LINE.saturating_sub(line.len());
            if content.len() > room {
                truncated = true;
            }
            line.extend_from_slice(&content[..content.len().min(room)]);
            reader.consume(take);
            if done {
                break;
            }
        }
        if eof && !read_any {
            return;
        }
        let mut text = String::from_utf8_lossy(&line).into_owned();
        if text.ends_with('\r') {
            text.pop();
        }
        if truncated {
            text.push_str(" …[truncated]");
        }
        match stream {
            Stream::Stdout => tracing::info!(target: "offload::job", pid, "{text}"),
            Stream::Stderr => tracing::warn!(target: "offload::job", pid, "{text}"),
        }
        if let Some(tail) = &tail {
            let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
            if t.len() == STDERR_TAIL_LINES {
                t.pop_front();
            }
            t.push_back(text.clone());
        }
        emitter.emit(ProcessEvent::Log {
            pid,
            stream,
            line: text,
        });
        if eof {
            return;
        }
    }
}

/// Collects a command-mode program's stdout, at most `max` bytes (the rest is read and dropped).
async fn collect_output<R: AsyncRead + Unpin>(mut out: R, max: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match out.read(&mut chunk).await {
            Ok(0) | Err(_) => return buf,
            Ok(n) => {
                let room = max.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}
