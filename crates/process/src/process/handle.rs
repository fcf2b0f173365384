//! [`JobProcess`]: the handle of one worker process, and the [`Command`]s it sends the
//! process's actor (`actor.rs`). A handle holds no state of the process but what the actor
//! publishes (`watch` channels, the event broadcast, the stderr tail): every decision is the
//! actor's.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use offload_protocol::{Call, Ready, Run, ToWorker};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::errors::{CallError, SendError};
use super::event::ProcessEvent;
use super::fds::{classify_all, FdError};
use super::outbox::Outbox;
use crate::contain::Containment;
use crate::outcome::Outcome;

/// What the job process runs first.
#[derive(Debug, Clone)]
pub(crate) struct MainJob {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) path: Option<String>,
    pub(crate) params: Value,
}

/// What a handle asks of its actor.
pub(super) enum Command {
    Send(ToWorker),
    Call {
        id: String,
        msg: ToWorker,
        reply: oneshot::Sender<Result<Value, CallError>>,
    },
    Kill {
        signal: i32,
        grace: Duration,
        /// The outcome names this kill only if the process had not begun to die by itself
        /// (a kill that answers a closed channel), else always.
        if_alive: bool,
    },
    /// A run that carries descriptors (`fds.rs` checked and classified them; `actor/passing.rs`
    /// sends them).
    RunWithFds {
        run: Run,
        fds: Vec<(std::os::fd::OwnedFd, offload_protocol::FdKind)>,
        /// Offered: a worker that cannot take them gets the run without them.
        optional: bool,
        reply: Option<oneshot::Sender<Result<(), FdError>>>,
    },
    /// A warm spare gets its one job.
    Assign {
        main: MainJob,
        timeout: Option<Duration>,
    },
    /// Host reading (`host_read.rs`): the actor reads the socket itself now.
    Drain,
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

/// What every clone of a handle shares; built by `launch.rs`.
#[derive(Debug)]
pub(super) struct HandleInner {
    pub(super) pid: u32,
    /// The main job, set at the start or when a warm spare is given its job.
    pub(super) main: std::sync::OnceLock<(String, String)>,
    pub(super) commands: mpsc::UnboundedSender<Command>,
    /// The channel's write buffer; `None` in command mode.
    pub(super) outbox: Option<Outbox>,
    pub(super) events: broadcast::Sender<ProcessEvent>,
    pub(super) first_events: Mutex<Option<broadcast::Receiver<ProcessEvent>>>,
    pub(super) outcome: watch::Receiver<Option<Outcome>>,
    pub(super) exit: watch::Receiver<Option<Outcome>>,
    pub(super) ready: watch::Receiver<Option<Ready>>,
    pub(super) stderr_tail: Arc<Mutex<VecDeque<String>>>,
    pub(super) next_id: AtomicU64,
    pub(super) kill_signal: i32,
    pub(super) containment: Arc<Containment>,
    /// The largest number of descriptors one run may carry.
    pub(super) max_fds_per_run: usize,
    /// The channel, when the host reads it (`host_read.rs`).
    pub(super) host: Option<Arc<super::host_read::HostChannel>>,
}

impl JobProcess {
    pub(super) fn new(inner: HandleInner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn containment(&self) -> &Containment {
        &self.inner.containment
    }

    /// The pid (also the process group id).
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// The channel to read on the host's own thread, for a process started with
    /// [`ProcessOptions::host_read`](crate::ProcessOptions::host_read).
    pub fn host_channel(&self) -> Option<&Arc<super::host_read::HostChannel>> {
        self.inner.host.as_ref()
    }

    /// Something the worker sent waits to be handled (host reading only; else always false).
    /// Call [`drain_input`](Self::drain_input) before deciding anything on what it has not
    /// said yet (a timeout).
    pub fn input_pending(&self) -> bool {
        self.inner.host.as_ref().is_some_and(|h| h.input_pending())
    }

    /// Host reading: the process's actor reads the channel itself now, whatever the host's
    /// thread is doing (what it reads is handled as usual; answers reach the pool's hook).
    pub fn drain_input(&self) {
        if self.inner.host.is_some() {
            let _ = self.inner.commands.send(Command::Drain);
        }
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

    /// Sends a raw protocol message through the process's actor, in order with
    /// [`call`](Self::call), [`dispatch`](Self::dispatch) and the main job's `run`. Answers to
    /// runs arrive as [`ProcessEvent::Answer`].
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

    /// Writes a message straight into the channel, from the caller's task (no hop to the
    /// actor): [`queue`](Self::queue) then [`flush`](Self::flush). Frames sent this way keep
    /// their order among themselves, not with what goes through the actor
    /// ([`send`](Self::send), [`call`](Self::call)): an owner that sends its hot frames this
    /// way (a pool's runs) must not need that order.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] when the channel is closed (the job is over, the process is gone
    /// or a write failed), [`SendError::NoChannel`] in command mode, [`SendError::Encode`]
    /// over the frame limit (nothing is sent).
    pub fn send_frame<T: serde::Serialize>(&self, msg: &T) -> Result<(), SendError> {
        self.queue(msg)?;
        self.flush()
    }

    /// Appends a message to the channel's write buffer without writing it: a sender of many
    /// frames queues them all, then calls [`flush`](Self::flush) once (one system call).
    ///
    /// # Errors
    ///
    /// As [`send_frame`](Self::send_frame); nothing is queued then.
    pub fn queue<T: serde::Serialize>(&self, msg: &T) -> Result<(), SendError> {
        match &self.inner.outbox {
            Some(o) => o.queue(msg),
            None => Err(SendError::NoChannel),
        }
    }

    /// Writes what [`queue`](Self::queue) gathered: from this task when the socket takes it at
    /// once, else by the channel's writer task (never blocks, whatever the worker does).
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] when the channel is broken or closed (a write failed: the worker
    /// is gone or closed its end): what was queued is dropped, and the worker can take no more
    /// frames. [`SendError::NoChannel`] in command mode.
    pub fn flush(&self) -> Result<(), SendError> {
        match &self.inner.outbox {
            Some(o) => o.flush(),
            None => Err(SendError::NoChannel),
        }
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

    /// Sends `run` with `fds` passed to the worker just before it (`docs/protocol.md` §9):
    /// each descriptor in a `NODE_HANDLE` frame, acknowledged one at a time, then the `run`
    /// with `fds: n`. Returns once the `run` is sent; its answer arrives as a
    /// [`ProcessEvent::Answer`] (a failure here is also answered there, as an error named
    /// [`FdError::name`], so an owner that only watches answers sees it). The descriptors are
    /// this process's from here: closed once sent, or whatever fails.
    ///
    /// # Errors
    ///
    /// [`FdError`]: too many (the process's `max_fds_per_run`), one not open, a worker that
    /// does not take descriptors or not this kind, a refusal, no acknowledgement in time, a
    /// cancel, or a closed channel.
    pub async fn run_with_fds(
        &self,
        run: Run,
        fds: Vec<std::os::fd::OwnedFd>,
    ) -> Result<(), FdError> {
        let (reply, rx) = oneshot::channel();
        self.start_run_with_fds(run, fds, Some(reply))?;
        rx.await.unwrap_or(Err(FdError::ChannelClosed))
    }

    /// [`run_with_fds`](Self::run_with_fds) without waiting: the outcome comes as the run's
    /// answer. Checks the count and that each descriptor is open here, in the caller's task.
    ///
    /// # Errors
    ///
    /// [`FdError::TooMany`], [`FdError::Closed`], [`FdError::ChannelClosed`] (the descriptors
    /// are closed then).
    pub fn start_run_with_fds(
        &self,
        run: Run,
        fds: Vec<std::os::fd::OwnedFd>,
        reply: Option<oneshot::Sender<Result<(), FdError>>>,
    ) -> Result<(), FdError> {
        self.send_fd_run(run, fds, false, reply)
    }

    /// Like [`start_run_with_fds`](Self::start_run_with_fds), but the descriptors are only
    /// offered: a worker that does not take descriptors, or not of these kinds, gets the run
    /// without them (they are closed here), instead of the run failing. Refusals and missing
    /// acknowledgements from a worker that does take them still fail the run.
    ///
    /// # Errors
    ///
    /// As [`start_run_with_fds`](Self::start_run_with_fds).
    pub fn start_run_offering_fds(
        &self,
        run: Run,
        fds: Vec<std::os::fd::OwnedFd>,
    ) -> Result<(), FdError> {
        self.send_fd_run(run, fds, true, None)
    }

    fn send_fd_run(
        &self,
        run: Run,
        fds: Vec<std::os::fd::OwnedFd>,
        optional: bool,
        reply: Option<oneshot::Sender<Result<(), FdError>>>,
    ) -> Result<(), FdError> {
        let kinds = classify_all(&fds, self.inner.max_fds_per_run)?;
        let fds = fds.into_iter().zip(kinds).collect();
        self.inner
            .commands
            .send(Command::RunWithFds {
                run,
                fds,
                optional,
                reply,
            })
            .map_err(|_| FdError::ChannelClosed)
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
        let _ = self.inner.commands.send(Command::Kill {
            signal,
            grace,
            if_alive: false,
        });
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
        let _ = self.inner.commands.send(Command::Kill {
            signal,
            grace,
            if_alive: false,
        });
    }

    /// SIGKILLs a worker whose channel closed or broke. The outcome says `Killed` only if the
    /// process had not already begun to die by itself: a worker killed from outside closes
    /// its channel before it becomes a zombie, and its own death (`Crashed`) is the cause.
    pub fn start_kill_for_closed_channel(&self) {
        let _ = self.inner.commands.send(Command::Kill {
            signal: libc::SIGKILL,
            grace: Duration::ZERO,
            if_alive: true,
        });
    }

    /// Test-only fault hook: makes this process's actor panic (`guard.rs` then kills the
    /// process and publishes `SupervisorFailed`). Never use it outside tests.
    #[cfg(feature = "fault-injection")]
    #[doc(hidden)]
    pub fn inject_panic(&self) {
        let _ = self.inner.commands.send(Command::Panic);
    }
}

impl JobProcess {
    /// Kills (SIGKILL) every process this worker started and left behind, while the worker
    /// itself lives on; returns their pids. Call it when the worker has no job running (a
    /// pool does, each time a resident worker becomes idle): a process of a running job
    /// would be killed too.
    ///
    /// With a cgroup ([`has_cgroup`](Self::has_cgroup)) this reads one small file; without,
    /// it lists `/proc` and reads the stat and environment of the processes created since the
    /// previous sweep (by pid; everything after a pid wrap-around): run it off the async
    /// threads.
    pub fn sweep_leftovers(&self) -> Vec<u32> {
        let killed = self.containment().sweep(self.pid());
        if !killed.is_empty() {
            tracing::info!(
                pid = self.pid(),
                ?killed,
                "killed processes a job left behind"
            );
        }
        killed
    }

    /// Whether [`sweep_leftovers`](Self::sweep_leftovers) could find anything now: `false`
    /// when the worker has no cgroup and the system created no process since the previous
    /// sweep began (then that sweep already killed every leftover). One small read; an owner
    /// that sweeps each time a worker becomes idle asks this first and skips the sweep.
    pub fn may_have_leftovers(&self) -> bool {
        self.containment().may_have_leftovers()
    }

    /// Whether this worker has a cgroup of its own (the fourth containment layer).
    pub fn has_cgroup(&self) -> bool {
        self.containment().cgroup.is_some()
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
