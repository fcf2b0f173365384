//! The messages of protocol v1, one type per message (`docs/protocol.md` §4).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A message from the supervisor to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToWorker {
    /// Run a job.
    Run(Run),
    /// Call a function of a job (ee-core's `callFunc`).
    Call(Call),
    /// Ask a running job to stop.
    Cancel(Cancel),
    /// A broadcast event; with an `id` the worker answers [`FromWorker::Ack`].
    Event(Broadcast),
    /// Liveness check; answered by [`FromWorker::Pong`].
    Ping(Ping),
    /// Stop gracefully.
    Shutdown(Shutdown),
    /// The hard-kill notice: the supervisor sends `SIGKILL` after `grace_ms`.
    Kill(Kill),
}

/// A message from a worker to its supervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FromWorker {
    /// The handshake, and after it "accepting jobs again" (flow control).
    Ready(Ready),
    /// Flow control: send no new jobs until the next `ready`.
    Busy,
    /// A job's progress.
    Progress(Progress),
    /// A named event for the application.
    Event(Event),
    /// A job succeeded.
    Result(ResultMsg),
    /// A job failed.
    Error(WorkerError),
    /// Answers a broadcast with an `id`, or `shutdown`.
    Ack(Ack),
    /// Answers `ping`.
    Pong(Pong),
}

/// `run`: run a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Run {
    /// The job's id on this channel.
    pub id: String,
    /// The job's name relative to the jobs folder, `/`-separated, without extension.
    pub job: String,
    /// An absolute file the supervisor resolved and validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The job's input.
    #[serde(default)]
    pub params: Value,
    /// Positional arguments (ee-core's `jobParams`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Value>>,
    /// Soft deadline, Unix epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
    /// How many descriptors were passed for this run just before it (protocol 1.1, §9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fds: Option<u32>,
    /// Which of those descriptors are the job's byte streams (protocol 1.1, §10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<crate::StreamSpec>,
}

impl Run {
    /// A `run` with no path, args or deadline.
    pub fn new(id: impl Into<String>, job: impl Into<String>, params: Value) -> Self {
        Self {
            id: id.into(),
            job: job.into(),
            path: None,
            params,
            args: None,
            deadline: None,
            fds: None,
            streams: None,
        }
    }

    /// Sets the resolved absolute path.
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Sets the soft deadline (Unix epoch milliseconds).
    #[must_use]
    pub fn with_deadline(mut self, deadline_ms: u64) -> Self {
        self.deadline = Some(deadline_ms);
        self
    }

    /// Names the job's byte streams among the run's descriptors (§10).
    #[must_use]
    pub fn with_streams(mut self, streams: crate::StreamSpec) -> Self {
        self.streams = Some(streams);
        self
    }

    /// Sets positional arguments (ee-core's `jobParams`).
    #[must_use]
    pub fn with_args(mut self, args: Vec<Value>) -> Self {
        self.args = Some(args);
        self
    }
}

/// `call`: call a function of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Call {
    /// The call's id on this channel.
    pub id: String,
    /// The job's name.
    pub job: String,
    /// An absolute file the supervisor resolved and validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The function's name.
    pub func: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<Value>,
}

impl Call {
    /// A `call` with no path.
    pub fn new(
        id: impl Into<String>,
        job: impl Into<String>,
        func: impl Into<String>,
        args: Vec<Value>,
    ) -> Self {
        Self {
            id: id.into(),
            job: job.into(),
            path: None,
            func: func.into(),
            args,
        }
    }

    /// Sets the resolved absolute path.
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
}

/// `cancel`: ask a running job to stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Cancel {
    /// The job to cancel.
    pub id: String,
}

impl Cancel {
    /// A `cancel` of `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }
}

/// `event` from the supervisor: a broadcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Broadcast {
    /// The event's name.
    pub name: String,
    /// Its data.
    #[serde(default)]
    pub data: Value,
    /// When present, the worker answers `ack` with this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl Broadcast {
    /// A broadcast; `id` asks for an `ack`.
    pub fn new(name: impl Into<String>, data: Value, id: Option<String>) -> Self {
        Self {
            name: name.into(),
            data,
            id,
        }
    }
}

/// `ping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Ping {
    /// Echoed in the `pong`.
    pub id: String,
}

impl Ping {
    /// A `ping` with `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }
}

/// `shutdown`: stop accepting, drain for `grace_ms`, cancel the rest, ack, exit 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Shutdown {
    /// How long running jobs may take before they are cancelled.
    pub grace_ms: u64,
}

impl Shutdown {
    /// A `shutdown` with a grace period.
    pub fn new(grace_ms: u64) -> Self {
        Self { grace_ms }
    }
}

/// `kill`: the hard-kill notice (a minor addition: older workers ignore it and are killed all
/// the same). The worker may run its hard-kill listeners; `SIGKILL` follows after `grace_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Kill {
    /// How long before the supervisor sends `SIGKILL`.
    pub grace_ms: u64,
}

impl Kill {
    /// A `kill` notice with a grace period.
    pub fn new(grace_ms: u64) -> Self {
        Self { grace_ms }
    }
}

/// `ready`: the handshake (all fields set), or flow control after it (fields may be absent).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Ready {
    /// The version the worker speaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u32>,
    /// The worker's pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// `<language>/<version>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Optional features the worker implements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// How many jobs it runs at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// The minor version of the protocol it speaks (absent: 0; 1 adds descriptors, §9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<u32>,
}

impl Ready {
    /// A full handshake.
    pub fn handshake(
        protocol: u32,
        pid: u32,
        runtime: impl Into<String>,
        capabilities: Vec<String>,
        concurrency: u32,
    ) -> Self {
        Self {
            protocol: Some(protocol),
            pid: Some(pid),
            runtime: Some(runtime.into()),
            capabilities,
            concurrency: Some(concurrency),
            minor: None,
        }
    }

    /// Announces the minor version (protocol 1.1 and later).
    #[must_use]
    pub fn with_minor(mut self, minor: u32) -> Self {
        self.minor = Some(minor);
        self
    }

    /// Whether the worker takes descriptors of `kind` (§9): minor ≥ 1 and `fds`, or
    /// `handles` for the socket kinds Node can wrap.
    pub fn takes_fd(&self, kind: crate::FdKind) -> bool {
        self.minor.unwrap_or(0) >= 1
            && (self.has_capability(crate::CAP_FDS)
                || (self.has_capability(crate::CAP_HANDLES) && kind.node_type().is_some()))
    }

    /// Whether the worker announced `capability`.
    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

/// `progress`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Progress {
    /// The job.
    pub id: String,
    /// Any JSON.
    #[serde(default)]
    pub data: Value,
}

impl Progress {
    /// Progress of job `id`.
    pub fn new(id: impl Into<String>, data: Value) -> Self {
        Self {
            id: id.into(),
            data,
        }
    }
}

/// Who an event from a worker is for (the seed's `eventReceiver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Receiver {
    /// The manager (ChildJob / ChildPool) emits it.
    Job,
    /// Only the process's own handle emits it.
    Task,
    /// Both.
    #[default]
    All,
}

impl Receiver {
    /// Maps a wire spelling: `job`/`childJob`, `task`/`forkProcess`, anything else `all`.
    pub fn from_wire(s: &str) -> Self {
        match s {
            "job" | "childJob" => Self::Job,
            "task" | "forkProcess" => Self::Task,
            _ => Self::All,
        }
    }

    /// Whether the manager-level stream gets it.
    pub fn to_manager(self) -> bool {
        matches!(self, Self::Job | Self::All)
    }

    /// Whether the per-process stream gets it.
    pub fn to_process(self) -> bool {
        matches!(self, Self::Task | Self::All)
    }
}

impl<'de> Deserialize<'de> for Receiver {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        Ok(s.map_or(Self::All, |s| Self::from_wire(&s)))
    }
}

/// `event` from a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// The event's name.
    pub name: String,
    /// Its data.
    #[serde(default)]
    pub data: Value,
    /// Who it is for.
    #[serde(default)]
    pub receiver: Receiver,
    /// The job it belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl Event {
    /// An event.
    pub fn new(name: impl Into<String>, data: Value, receiver: Receiver) -> Self {
        Self {
            name: name.into(),
            data,
            receiver,
            id: None,
        }
    }

    /// Marks the job it belongs to.
    #[must_use]
    pub fn for_job(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}

/// `result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResultMsg {
    /// The job.
    pub id: String,
    /// Its return value.
    #[serde(default)]
    pub value: Value,
}

impl ResultMsg {
    /// The result of job `id`.
    pub fn new(id: impl Into<String>, value: Value) -> Self {
        Self {
            id: id.into(),
            value,
        }
    }
}

/// An error as it travels: `{name, message, stack}`, and `retry: false` when the job must not
/// be tried again (absent, as older workers send it, means "retry while attempts remain").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorInfo {
    /// The error's class (`TypeError`, `Cancelled`, …).
    pub name: String,
    /// What happened.
    #[serde(default)]
    pub message: String,
    /// Where, if the runtime knows.
    #[serde(default)]
    pub stack: Option<String>,
    /// `Some(false)`: the job goes straight to dead, whatever attempts it has left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<bool>,
}

impl ErrorInfo {
    /// An error without a stack.
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            message: message.into(),
            stack: None,
            retry: None,
        }
    }

    /// Sets the stack.
    #[must_use]
    pub fn with_stack(mut self, stack: impl Into<String>) -> Self {
        self.stack = Some(stack.into());
        self
    }

    /// Marks the error as not retryable (`retry: false`): the job goes straight to dead.
    #[must_use]
    pub fn non_retryable(mut self) -> Self {
        self.retry = Some(false);
        self
    }

    /// Whether the sender allows a retry (anything but `retry: false`).
    pub fn retryable(&self) -> bool {
        self.retry != Some(false)
    }
}

impl std::fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

/// `error`: a job failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkerError {
    /// The job.
    pub id: String,
    /// What went wrong.
    pub error: ErrorInfo,
}

impl WorkerError {
    /// The failure of job `id`.
    pub fn new(id: impl Into<String>, error: ErrorInfo) -> Self {
        Self {
            id: id.into(),
            error,
        }
    }
}

/// `ack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Ack {
    /// The broadcast's id, or `shutdown`.
    pub id: String,
}

impl Ack {
    /// An ack of `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }
}

/// `pong`, with the worker's heap when its runtime can tell (optional fields: a minor
/// addition older supervisors ignore).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Pong {
    /// The ping's id.
    pub id: String,
    /// Heap in use, bytes (Node `heapUsed`, Python and Rust: the C allocator's bytes in use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_used: Option<u64>,
    /// Heap reserved, bytes (Node `heapTotal`, Python and Rust: the C allocator's arenas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_total: Option<u64>,
}

impl Pong {
    /// A pong for ping `id`, without heap figures.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            heap_used: None,
            heap_total: None,
        }
    }

    /// With heap figures (bytes in use, bytes reserved).
    #[must_use]
    pub fn with_heap(mut self, used: u64, total: u64) -> Self {
        self.heap_used = Some(used);
        self.heap_total = Some(total);
        self
    }
}
