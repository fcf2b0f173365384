//! [`ProcessEvent`]: what a worker process did, as its actor reports it to the handles, the
//! manager's stream and a pool's sink (`emitter.rs` routes each event by its receiver).

use offload_protocol::{ErrorInfo, Ready, Receiver};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::flow::Credit;
use crate::outcome::Outcome;

/// Which output stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The job's stdout.
    Stdout,
    /// The job's stderr.
    Stderr,
}

/// What a log sink ([`ProcessOptions::log_sink`](crate::ProcessOptions::log_sink)) receives:
/// every line of the processes that share it, in the order each pipe delivered them; the
/// pumps wait while the sink is full (nothing is dropped).
#[derive(Debug)]
#[non_exhaustive]
pub enum OutputItem {
    /// A line a process wrote to stdout or stderr.
    Line {
        /// The process.
        pid: u32,
        /// Which stream.
        stream: Stream,
        /// The line, without its newline, at most [`MAX_LOG_LINE`](crate::MAX_LOG_LINE) bytes.
        line: String,
    },
    /// A barrier the sink's owner puts in the sink: its reader answers it once it handled every
    /// item sent before it (the processes never send one). With the pumps drained at each
    /// answer, a barrier sent after a job's answer is read after every line the job printed.
    Barrier(oneshot::Sender<()>),
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
        /// Its credit, with backpressure ([`EventFlow`](crate::EventFlow)).
        #[serde(skip)]
        credit: Credit,
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
        /// Its credit, with backpressure ([`EventFlow`](crate::EventFlow)).
        #[serde(skip)]
        credit: Credit,
    },
    /// The answer to a run or call sent with [`JobProcess::dispatch`](crate::JobProcess::dispatch) or
    /// [`JobProcess::send`](crate::JobProcess::send).
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
    /// The worker answered a `ping`, with its heap when its runtime can tell.
    Pong {
        /// The process.
        pid: u32,
        /// The ping's id.
        id: String,
        /// Heap in use, bytes.
        heap_used: Option<u64>,
        /// Heap reserved, bytes.
        heap_total: Option<u64>,
    },
    /// A line the job wrote to stdout or stderr.
    Log {
        /// The process.
        pid: u32,
        /// Which stream.
        stream: Stream,
        /// The line, without its newline, at most [`MAX_LOG_LINE`](crate::MAX_LOG_LINE) bytes.
        line: String,
        /// Its credit, with backpressure ([`EventFlow`](crate::EventFlow)).
        #[serde(skip)]
        credit: Credit,
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
            | Self::Pong { pid, .. }
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
