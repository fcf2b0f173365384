//! The actor of one worker process: the only owner of its tokio `Child`, the channel's
//! reading half, the pending calls and the timers (timeout, cancel grace, linger, kill
//! escalation). One `select!` loop reacts to frames, handle commands, the exit and the timers;
//! after the exit it drains the last frames, kills what is left of the job (group, markers,
//! cgroup) and waits until it is gone, then asks the verdict (`verdict.rs`) for the outcome
//! and publishes it. Kills escalate on the *actual* exit, never on "the signal was sent".

use std::collections::{HashMap, VecDeque};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use offload_protocol::{
    decode_from_worker, Cancel, Decoded, ErrorInfo, FrameReader, FromWorker, ReadError, Ready, Run,
    ToWorker,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::channel::ReadHalf;
use super::errors::{CallError, SendError};
use super::event::ProcessEvent;
use super::handle::{Command, MainJob};
use super::outbox::{CloseOnDrop, Outbox};
use super::output::{self, DrainRequest};
use super::verdict;
use crate::contain::Containment;
use crate::emitter::Emitter;
use crate::flow::{needs_credit, Credit, EventFlow, Stall};
use crate::guard::OnExit;
use crate::limits::ResourceLimits;
use crate::outcome::Outcome;
use crate::spawn::signal_group;
use crate::timer;

mod host;
mod passing;

pub(super) use host::HostSide;
use passing::FdRun;
pub(super) use passing::Passing;

/// How long to keep reading the channel after the process exited (its last frames).
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);
/// How long to wait for a killed group to disappear and its pipes to close.
const GONE_WAIT: Duration = Duration::from_secs(2);

/// The tasks reading the process's stdout and stderr.
pub(super) struct Outputs {
    /// Command mode: the task collecting stdout.
    pub(super) stdout: Option<tokio::task::JoinHandle<Vec<u8>>>,
    /// The log-line pumps.
    pub(super) pumps: Vec<tokio::task::JoinHandle<()>>,
}

/// What the actor keeps of its launch.
pub(super) struct LaunchRest {
    pub(super) main: Option<MainJob>,
    pub(super) cancel_grace: Duration,
    pub(super) linger: Duration,
    pub(super) kill_signal: i32,
    pub(super) limits: ResourceLimits,
    pub(super) containment: Arc<Containment>,
    pub(super) command_mode: bool,
    /// The main job's descriptors (a `ChildJob` run with descriptors), with their kinds.
    pub(super) main_fds: Option<Vec<(std::os::fd::OwnedFd, offload_protocol::FdKind)>>,
}

/// The one owner of a worker process (see the module docs).
pub(super) struct Actor {
    pub(super) pid: u32,
    pub(super) reader: Option<FrameReader<ReadHalf>>,
    /// The channel read by the host's thread instead (`host_read.rs`, `actor/host.rs`).
    pub(super) host: Option<HostSide>,
    /// The channel's write buffer (shared with the handles); `None` once the actor closed it.
    pub(super) writer: Option<Outbox>,
    /// Closes the outbox if the actor ends or panics without closing it.
    pub(super) _close_outbox: Option<CloseOnDrop>,
    pub(super) emitter: Emitter,
    pub(super) stderr_tail: Arc<Mutex<VecDeque<String>>>,
    pub(super) outcome_tx: watch::Sender<Option<Outcome>>,
    pub(super) ready_tx: watch::Sender<Option<Ready>>,
    pub(super) pending_calls: HashMap<String, oneshot::Sender<Result<Value, CallError>>>,
    /// With a log sink: the output pumps, drained before answers are reported.
    pub(super) drains: Vec<mpsc::UnboundedSender<DrainRequest>>,
    /// Answers read and not reported yet (waiting for the pumps' drain).
    pub(super) answers: crate::emitter::Answers,
    /// The main job's answer, once it came.
    pub(super) answer: Option<Outcome>,
    pub(super) protocol_error: Option<String>,
    pub(super) timed_out: bool,
    /// The first signal of an explicit kill.
    pub(super) killed_with: Option<i32>,
    /// When to escalate to SIGKILL.
    pub(super) kill_at: Option<Instant>,
    pub(super) timeout_at: Option<Instant>,
    /// After the answer: when a process that has not exited gets killed.
    pub(super) linger_at: Option<Instant>,
    pub(super) launch_rest: LaunchRest,
    /// Runs passing descriptors (`actor/passing.rs`).
    pub(super) passing: Passing,
    /// Backpressure for events (`flow.rs`): a progress or event frame is read only with a
    /// credit.
    pub(super) flow: Option<EventFlow>,
    /// How long the reading has been held back by `flow`, reported past
    /// [`STALL_WARNING`](crate::STALL_WARNING).
    pub(super) stall: Stall,
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Actor {
    pub(super) async fn run(
        mut self,
        mut child: crate::WorkerChild,
        mut commands: mpsc::UnboundedReceiver<Command>,
        outputs: Outputs,
        exit_tx: watch::Sender<Option<Outcome>>,
        on_exit: OnExit,
    ) {
        if !self.launch_rest.command_mode {
            self.send_main_run();
        }
        let status = loop {
            // Read once: the listeners return credits concurrently, and the two branches below
            // must not both see themselves disabled.
            let held = self.held_back();
            let warn_at = self.stall.watch(held);
            tokio::select! {
                frame = next_frame(&mut self.reader), if !held => {
                    self.on_frame(frame);
                    // The rest of the same read, without going back through the select.
                    while !self.held_back() {
                        let Some(frame) = self.reader.as_mut().and_then(FrameReader::next_buffered) else {
                            break;
                        };
                        self.on_frame(frame.map(Some));
                    }
                }
                () = room(&self.flow), if held => {}
                () = sleep_until_opt(warn_at), if held => {
                    if let Some(flow) = &self.flow {
                        self.stall.warn(self.pid, flow);
                    }
                }
                input = host::next_input(&mut self.host) => self.on_queued_input(input),
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    // Every handle is gone; the process keeps running until its manager or
                    // the registry ends it, or its job ends.
                    None => commands = mpsc::unbounded_channel().1,
                },
                status = child.wait() => break status,
                () = sleep_until_opt(self.timeout_at) => {
                    // What the worker sent before its deadline counts (host reading).
                    self.drain_host();
                    self.on_timeout();
                }
                () = sleep_until_opt(self.kill_at) => self.escalate(),
                () = sleep_until_opt(self.passing.ack_at) => {
                    self.drain_host();
                    self.on_fd_ack_timeout();
                }
                () = sleep_until_opt(self.linger_at) => {
                    self.linger_at = None;
                    self.signal(self.launch_rest.kill_signal);
                    self.kill_at = Some(timer::deadline_in(self.launch_rest.cancel_grace));
                }
            }
            // The answers of that read; and answers made here rather than read (a run whose
            // descriptors could not be passed, `actor/passing.rs`), now: not with a next read,
            // which may never come.
            self.report_answers().await;
            self.settle_host();
        };
        // The last frames may still be in the socket: read them before deciding.
        let drain_until = timer::deadline_in(DRAIN_AFTER_EXIT);
        self.drain_host_at_exit(drain_until).await;
        let mut drain = ExitDrain::new(drain_until, self.flow.as_ref());
        while self.reader.is_some() {
            if self.held_back() && drain.wait_for_listeners(self.flow.as_ref()).await {
                continue;
            }
            match tokio::time::timeout_at(drain.until, next_frame(&mut self.reader)).await {
                Ok(frame) => self.on_frame(frame),
                Err(_) => break,
            }
        }
        self.report_answers().await;
        self.close_writer();
        // Nothing of the job may outlive it: its group, then anything carrying its marker
        // (grandchildren that left the group), then wait until they are really gone.
        let _ = signal_group(self.pid, libc::SIGKILL);
        let mut leaked = self.launch_rest.containment.kill_strays_at_exit(self.pid);
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
            Ok(status) => self.decide(status, &stdout),
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
        if let Some(fds) = self.launch_rest.main_fds.take() {
            // Sent once the handshake says the worker takes them (`actor/passing.rs`).
            let total = u32::try_from(fds.len()).unwrap_or(u32::MAX);
            return self.queue_fd_run(FdRun {
                run,
                fds: fds.into(),
                total,
                sent: 0,
                cancelled: false,
                optional: false,
                reply: None,
            });
        }
        if let Err(e) = self.send_frame(&ToWorker::Run(run)) {
            self.protocol_violation(format!("cannot send the job: {e}"));
        }
    }

    pub(super) fn send_frame(&mut self, msg: &ToWorker) -> Result<(), SendError> {
        let writer = self.writer.as_ref().ok_or(if !self.reading() {
            SendError::NoChannel
        } else {
            SendError::Closed
        })?;
        writer.queue(msg)?;
        // A failed write (the worker is gone or closed its end) is not this frame's error:
        // the process's end decides the outcome, as when the worker dies after reading it.
        let _ = writer.flush();
        Ok(())
    }

    /// Ends the channel's writing side: what is queued is written, then end of file.
    fn close_writer(&mut self) {
        if let Some(w) = self.writer.take() {
            w.close();
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Send(msg) => {
                match &msg {
                    ToWorker::Cancel(c) => self.cancel_fd_run(&c.id),
                    // A hard kill's notice announces SIGKILL: a worker that exits by itself
                    // within the grace (its hook ran) was still killed.
                    ToWorker::Kill(_) if self.killed_with.is_none() => {
                        self.killed_with = Some(libc::SIGKILL);
                    }
                    _ => {}
                }
                if let Err(e) = self.send_frame(&msg) {
                    tracing::debug!(pid = self.pid, error = %e, "message not sent");
                }
            }
            Command::Call { id, msg, reply } => {
                // Counted before the frame goes: the host must not hand its reply, read before
                // the call is recorded, to the pool's hook as a job's answer.
                self.count_calls_with(1);
                match self.send_frame(&msg) {
                    Ok(()) => {
                        self.pending_calls.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(CallError::Send(e)));
                    }
                }
                self.count_calls();
            }
            Command::Assign { main, timeout } => {
                if self.launch_rest.main.is_some() {
                    return;
                }
                self.timeout_at = timeout.map(timer::deadline_in);
                self.launch_rest.main = Some(main);
                self.send_main_run();
            }
            Command::RunWithFds {
                run,
                fds,
                optional,
                reply,
            } => {
                let total = u32::try_from(fds.len()).unwrap_or(u32::MAX);
                self.queue_fd_run(FdRun {
                    run,
                    fds: fds.into(),
                    total,
                    sent: 0,
                    cancelled: false,
                    optional,
                    reply,
                });
            }
            Command::Drain => self.drain_host(),
            #[cfg(feature = "fault-injection")]
            Command::Panic => panic!("injected fault: the process actor panics"),
            Command::Kill {
                signal,
                grace,
                if_alive,
            } => {
                if self.killed_with.is_none() && !(if_alive && crate::sys::dying(self.pid)) {
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
        self.stop_host();
        self.close_writer();
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
            Err(ReadError::Truncated { .. }) if self.stopped_by_us() => {
                // Killed in the middle of a write: the kill's doing, not the worker's.
                self.reader = None;
                return;
            }
            Err(e) => return self.protocol_violation(e.to_string()),
        };
        if let Some(reply) = offload_protocol::decode_handle_reply(&line) {
            return self.on_handle_reply(reply);
        }
        match decode_from_worker(&line) {
            Ok(Decoded::Message(m)) => {
                let credit = self.credit_for(&m);
                self.on_message(m, credit);
            }
            Ok(Decoded::Ignored { reason }) => {
                tracing::debug!(pid = self.pid, %reason, "frame ignored");
            }
            Err(e) => self.protocol_violation(e.to_string()),
        }
    }

    /// The credit a progress or event frame takes with backpressure (read only when one was
    /// left; past the bound only at the exit, once the listeners stopped taking events).
    fn credit_for(&self, msg: &FromWorker) -> Credit {
        match &self.flow {
            Some(flow) if needs_credit(msg) => flow.take().unwrap_or_else(|| flow.force()),
            _ => Credit::default(),
        }
    }

    /// The process was killed or timed out: a frame its end cut short is no protocol error.
    pub(super) fn stopped_by_us(&self) -> bool {
        self.killed_with.is_some() || self.timed_out
    }

    /// A flow without credits holds the actor's reading back.
    fn held_back(&self) -> bool {
        self.reader.is_some() && self.flow.as_ref().is_some_and(EventFlow::exhausted)
    }

    fn on_message(&mut self, msg: FromWorker, credit: Credit) {
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
                    self.pump_fds();
                } else {
                    self.emitter.emit(ProcessEvent::Flow { pid, busy: false });
                }
            }
            FromWorker::Busy => self.emitter.emit(ProcessEvent::Flow { pid, busy: true }),
            FromWorker::Progress(p) => self.emitter.emit(ProcessEvent::Progress {
                pid,
                id: p.id,
                data: p.data,
                credit,
            }),
            FromWorker::Event(e) => self.emitter.emit(ProcessEvent::Event {
                pid,
                id: e.id,
                name: e.name,
                data: e.data,
                receiver: e.receiver,
                credit,
            }),
            FromWorker::Result(r) => self.on_answer(r.id, Ok(r.value)),
            FromWorker::Error(e) => self.on_answer(e.id, Err(e.error)),
            FromWorker::Ack(a) => self.emitter.emit(ProcessEvent::Ack { pid, id: a.id }),
            FromWorker::Pong(p) => self.emitter.emit(ProcessEvent::Pong {
                pid,
                id: p.id,
                heap_used: p.heap_used,
                heap_total: p.heap_total,
            }),
            _ => {}
        }
    }

    pub(super) fn on_answer(&mut self, id: String, result: Result<Value, ErrorInfo>) {
        if let Some(reply) = self.pending_calls.remove(&id) {
            let _ = reply.send(result.map_err(CallError::Failed));
            self.count_calls();
            return;
        }
        let is_main = self.launch_rest.main.as_ref().is_some_and(|m| m.id == id);
        if !is_main {
            if self.drains.is_empty() && self.emitter.hook.is_none() {
                self.emitter.emit(ProcessEvent::Answer {
                    pid: self.pid,
                    id,
                    result,
                });
            } else {
                self.answers.push((id, result));
            }
            return;
        }
        if self.answer.is_some() {
            return;
        }
        if self.timed_out {
            // The job answered its cancel: the worker can go now, the outcome stays TimedOut.
            self.close_writer();
            return;
        }
        let outcome =
            verdict::of_answer(result, self.timeout_at.is_some(), &self.launch_rest.limits);
        if matches!(outcome, Outcome::TimedOut) {
            self.timed_out = true;
        }
        self.answer = Some(outcome.clone());
        self.timeout_at = None;
        let _ = self.outcome_tx.send(Some(outcome));
        // One job per process: let it go. SDK workers exit on end-of-file; a process still
        // alive after the linger period is killed.
        self.close_writer();
        self.linger_at = Some(timer::deadline_in(self.launch_rest.linger));
    }

    /// Reports the answers of the frames just read, after the output pumps drained their
    /// pipes: the worker wrote its job's output before its answer (the SDKs flush stdout and
    /// stderr first), so every line of it is in the log sink before the answer is reported.
    async fn report_answers(&mut self) {
        if self.answers.is_empty() {
            return;
        }
        output::drain(&self.drains).await;
        self.hand_over_answers();
    }

    /// Hands the answers gathered to the sink's hook, then the rest to the sink.
    pub(super) fn hand_over_answers(&mut self) {
        if self.answers.is_empty() {
            return;
        }
        if let Some(hook) = &self.emitter.hook {
            // The pool may complete them here, on the reading task (its direct answer path).
            hook.answers(self.pid, &mut self.answers);
        }
        for (id, result) in std::mem::take(&mut self.answers) {
            self.emitter.emit(ProcessEvent::Answer {
                pid: self.pid,
                id,
                result,
            });
        }
    }

    /// The verdict (`verdict.rs`) on the facts gathered.
    fn decide(&self, status: ExitStatus, stdout: &[u8]) -> Outcome {
        let tail =
            verdict::recent_stderr(&self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner()));
        let facts = verdict::Facts {
            answer: self.answer.as_ref(),
            protocol_error: self.protocol_error.as_deref(),
            timed_out: self.timed_out,
            killed_with: self.killed_with,
            limits: &self.launch_rest.limits,
            command_mode: self.launch_rest.command_mode,
        };
        verdict::at_exit(&facts, status.into(), stdout, &tail)
    }
}

/// Waits for credits to come back (never, without backpressure).
async fn room(flow: &Option<EventFlow>) {
    match flow {
        Some(f) => f.room().await,
        None => std::future::pending().await,
    }
}

/// The reading of the last frames after the exit: [`DRAIN_AFTER_EXIT`] from the exit, plus
/// as long as the listeners keep taking events (with backpressure). Listeners that take none
/// for [`DRAIN_AFTER_EXIT`] stop the waiting: the rest is read past the bound.
pub(super) struct ExitDrain {
    pub(super) until: Instant,
    returned: u64,
    stalled: bool,
}

impl ExitDrain {
    pub(super) fn new(until: Instant, flow: Option<&EventFlow>) -> Self {
        Self {
            until,
            returned: flow.map_or(0, EventFlow::returned),
            stalled: false,
        }
    }

    /// The listeners stopped taking events: read past the bound.
    pub(super) fn stalled(&self) -> bool {
        self.stalled
    }

    /// Waits while no credit is left and the listeners take events; true to look again,
    /// false when they stopped taking them (read on past the bound).
    pub(super) async fn wait_for_listeners(&mut self, flow: Option<&EventFlow>) -> bool {
        let Some(flow) = flow.filter(|f| f.exhausted() && !self.stalled) else {
            return false;
        };
        let wait = timer::deadline_in(DRAIN_AFTER_EXIT);
        if tokio::time::timeout_at(wait, flow.room()).await.is_err()
            && flow.returned() == self.returned
        {
            tracing::warn!("the listeners of an ended process's events stopped taking them; its last frames are read past the backpressure bound");
            self.stalled = true;
            return false;
        }
        self.returned = flow.returned();
        self.until = self.until.max(timer::deadline_in(DRAIN_AFTER_EXIT));
        true
    }
}

async fn next_frame(
    reader: &mut Option<FrameReader<ReadHalf>>,
) -> Result<Option<Vec<u8>>, ReadError> {
    match reader {
        Some(r) => r.next_frame().await,
        None => std::future::pending().await,
    }
}
