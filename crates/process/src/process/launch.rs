//! Starting a supervised worker: [`start_process`] (and `start`, for `ChildJob`) spawns the
//! contained process (`spawn.rs`), then `launch` wires it: the handle's channels, the output
//! pumps (`output.rs`), stdin in command mode, the channel's shared write buffer (`outbox.rs`:
//! senders write from their own task, a worker that stops reading never blocks anyone), and
//! the actor itself (`actor.rs`) under its panic guard (`guard.rs`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use offload_protocol::FrameReader;
use tokio::io::AsyncWriteExt;
use tokio::sync::{broadcast, mpsc, watch};

use super::actor::{Actor, LaunchRest, Outputs};
use super::event::{OutputItem, ProcessEvent, Stream};
use super::handle::{HandleInner, JobProcess, MainJob};
use super::host_read::{HostChannel, HostInput};
use super::outbox::{CloseOnDrop, Outbox};
use super::output;
use crate::contain::Containment;
use crate::emitter::{Emitter, SinkHook};
use crate::flow::{EventFlow, Stall};
use crate::guard::{ActorGuard, OnExit};
use crate::limits::ResourceLimits;
use crate::spawn::SpawnedWorker;
use crate::timer;

/// Events buffered per subscriber before the slowest one starts losing the oldest.
const EVENT_CAPACITY: usize = 1024;

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
    pub(crate) sink_hook: Option<Arc<dyn SinkHook>>,
    pub(crate) log_sink: Option<mpsc::Sender<OutputItem>>,
    pub(crate) on_exit: Option<Box<dyn FnOnce(u32) + Send>>,
    pub(crate) max_fds_per_run: usize,
    pub(crate) fd_ack_timeout: Duration,
    pub(crate) main_fds: Option<Vec<(std::os::fd::OwnedFd, offload_protocol::FdKind)>>,
    pub(crate) host_read: bool,
    pub(crate) flow: Option<EventFlow>,
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
    /// Sees the events bound for `sink` first and may take the answers of each read itself,
    /// on the reading task (see [`SinkHook`]; a pool's direct answer path).
    pub sink_hook: Option<Arc<dyn SinkHook>>,
    /// A reliable, bounded sink of the process's stdout and stderr lines, which then do not go
    /// to the event stream (several processes may share one sink; each line names its pid).
    /// The output pumps wait while it is full, so
    /// the process blocks on its own output instead of lines being dropped; its reader must
    /// keep reading. With a log sink, the actor drains the output pipes whenever an answer
    /// arrives and reports the answer only after the lines read are in the sink: every line
    /// the job wrote before it sent its answer comes before the answer (see
    /// `docs/design/job-logs.md`).
    pub log_sink: Option<mpsc::Sender<OutputItem>>,
    /// Called once the process is gone, after its exit is published.
    pub on_exit: Option<Box<dyn FnOnce(u32) + Send>>,
    /// Put the process in a cgroup of its own where a writable cgroup v2 hierarchy exists
    /// (default true; `OFFLOAD_NO_CGROUP=1` turns it off for the whole supervisor).
    pub cgroup: bool,
    /// The largest number of descriptors one run may carry (default 16).
    pub max_fds_per_run: usize,
    /// How long the worker has to acknowledge each descriptor passed (default 5 s).
    pub fd_ack_timeout: Duration,
    /// The channel is read by the host's own thread through
    /// [`JobProcess::host_channel`] instead of a runtime task (see [`HostChannel`]; the Node
    /// addon's JavaScript thread). Ignored with a log sink or a main job (a `ChildJob`), whose
    /// answers the actor must see first. Default false.
    ///
    /// [`HostChannel`]: crate::HostChannel
    pub host_read: bool,
    /// Backpressure for the process's progress, events and log lines (see [`EventFlow`]): at
    /// most this many on their way to listeners at once (at most
    /// [`MAX_EVENT_BACKPRESSURE`](crate::MAX_EVENT_BACKPRESSURE)); past it the channel and the
    /// output pipes are not read until listeners took some. Nothing is dropped then, but every
    /// subscriber of the process's streams must keep reading. Default none: listeners that
    /// fall more than a ring behind lose the oldest events.
    pub event_backpressure: Option<usize>,
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
            sink_hook: None,
            log_sink: None,
            on_exit: None,
            cgroup: true,
            max_fds_per_run: super::fds::DEFAULT_MAX_FDS_PER_RUN,
            fd_ack_timeout: super::fds::DEFAULT_FD_ACK_TIMEOUT,
            host_read: false,
            event_backpressure: None,
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
            .field("log_sink", &self.log_sink.is_some())
            .field("max_fds_per_run", &self.max_fds_per_run)
            .field("fd_ack_timeout", &self.fd_ack_timeout)
            .field("event_backpressure", &self.event_backpressure)
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
    /// The main job's descriptors, checked and classified (`ChildJob` with descriptors).
    pub(crate) main_fds: Option<Vec<(std::os::fd::OwnedFd, offload_protocol::FdKind)>>,
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
    let marker = crate::markers::next_worker_marker();
    let worker = cmd
        .max_frame(opts.max_frame)
        .env(
            crate::markers::SUPERVISOR_ENV,
            crate::markers::supervisor_token(),
        )
        .env(crate::markers::WORKER_ENV, &marker)
        .cgroup(opts.cgroup)
        .spawn()
        .await?;
    let host_read = opts.host_read && dispatch.main.is_none() && opts.log_sink.is_none();
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
        sink_hook: opts.sink_hook,
        log_sink: opts.log_sink,
        on_exit: opts.on_exit,
        max_fds_per_run: opts.max_fds_per_run,
        fd_ack_timeout: opts.fd_ack_timeout,
        host_read,
        main_fds: dispatch.main_fds,
        flow: opts.event_backpressure.map(EventFlow::new),
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
    // The channel: the actor (or the host, `host_read.rs`) reads it; the actor and every
    // handle write into its outbox.
    let outbox = l.worker.channel.take().and_then(|ch| {
        // Cannot fail for a socket the runtime took (its registration moves to the halves); if
        // it did, the worker has no channel, which its handshake timeout reports.
        let halves = if l.host_read {
            super::channel::split_unregistered(ch).and_then(|(rd, wr)| {
                let (host, rx) =
                    HostChannel::new(pid, rd, l.max_frame, l.sink_hook.clone(), l.flow.clone())?;
                Ok((Reading::Host(host, rx), wr))
            })
        } else {
            super::channel::split(ch).map(|(rd, wr)| (Reading::Runtime(rd), wr))
        };
        let (rd, wr) = halves
            .map_err(|e| tracing::warn!(pid, error = %e, "cannot split the worker's channel"))
            .ok()?;
        Some((rd, Outbox::start(wr, l.max_frame)))
    });
    let writer = outbox.as_ref().map(|(_, o)| o.clone());
    let host_channel = outbox.as_ref().and_then(|(rd, _)| match rd {
        Reading::Host(h, _) => Some(Arc::clone(h)),
        Reading::Runtime(_) => None,
    });
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
        hook: l.sink_hook.take(),
    };
    emitter.emit(ProcessEvent::Spawned {
        pid,
        job: l.main.as_ref().map(|m| m.name.clone()),
    });

    let handle = JobProcess::new(HandleInner {
        pid,
        main: {
            let cell = std::sync::OnceLock::new();
            if let Some(m) = &l.main {
                let _ = cell.set((m.id.clone(), m.name.clone()));
            }
            cell
        },
        commands: cmd_tx,
        outbox: writer.clone(),
        events,
        first_events: Mutex::new(first_events),
        outcome: outcome_rx,
        exit: exit_rx,
        ready: ready_rx,
        stderr_tail: Arc::clone(&stderr_tail),
        next_id: AtomicU64::new(1),
        kill_signal: l.kill_signal,
        containment: Arc::clone(&containment),
        max_fds_per_run: l.max_fds_per_run,
        host: host_channel,
    });

    let stdout = l.worker.child.stdout.take();
    let stderr = l.worker.child.stderr.take();
    let stdin = l.worker.child.stdin.take();
    let mut pumps = Vec::new();
    let mut drains = Vec::new();
    let line_out = |stream, tail| output::LineOut {
        stream,
        pid,
        emitter: emitter.clone(),
        tail,
        sink: l.log_sink.clone(),
        flow: l.flow.clone(),
    };
    let output = match (&l.command_input, stdout) {
        (Some(_), Some(out)) => Some(tokio::spawn(output::collect_output(out, l.max_output))),
        (None, Some(out)) => {
            let (tx, rx) = mpsc::unbounded_channel();
            drains.push(tx);
            let to = line_out(Stream::Stdout, None);
            pumps.push(tokio::spawn(output::pump_lines(out, to, rx)));
            None
        }
        _ => None,
    };
    if let Some(err) = stderr {
        let (tx, rx) = mpsc::unbounded_channel();
        drains.push(tx);
        let to = line_out(Stream::Stderr, Some(Arc::clone(&stderr_tail)));
        pumps.push(tokio::spawn(output::pump_lines(err, to, rx)));
    }
    // Only the pumps hold the sink: it closes when they end.
    let drain_on_answer = l.log_sink.take().is_some();
    if let (Some(input), Some(mut stdin)) = (l.command_input.take(), stdin) {
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
            // Dropping stdin closes it: the program sees end of input.
        });
    }

    let (reader, host) = match outbox.map(|(rd, _)| rd) {
        Some(Reading::Runtime(rd)) => (Some(FrameReader::new(rd, l.max_frame)), None),
        Some(Reading::Host(channel, rx)) => (
            None,
            Some(super::actor::HostSide {
                channel,
                rx,
                ended: false,
                handled: 0,
            }),
        ),
        None => (None, None),
    };

    let actor = Actor {
        pid,
        reader,
        host,
        _close_outbox: writer.clone().map(CloseOnDrop),
        writer,
        emitter,
        stderr_tail,
        outcome_tx,
        ready_tx,
        pending_calls: HashMap::new(),
        drains: if drain_on_answer { drains } else { Vec::new() },
        answers: Vec::new(),
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
            containment,
            command_mode: output.is_some(),
            main_fds: l.main_fds,
        },
        passing: super::actor::Passing::new(l.fd_ack_timeout),
        flow: l.flow,
        stall: Stall::default(),
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

/// Who reads a worker's channel.
enum Reading {
    /// The actor, through the runtime.
    Runtime(super::channel::ReadHalf),
    /// The host's thread (`host_read.rs`), handing the actor what it does not handle.
    Host(Arc<HostChannel>, mpsc::UnboundedReceiver<HostInput>),
}
