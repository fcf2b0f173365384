//! [`Emitter`]: where a process actor's events go — its own broadcast, the manager's stream
//! and a pool's reliable sink — cloned only for streams somebody listens to; and the
//! [`SinkHook`] through which a pool takes a read's answers straight from the reading task.

use std::sync::Arc;

use offload_protocol::ErrorInfo;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

use crate::process::ProcessEvent;

/// The answers of one read of a worker's channel, in the order the worker sent them: each
/// job's wire id and its `result` value or `error`.
pub type Answers = Vec<(String, Result<Value, ErrorInfo>)>;

/// Lets the owner of a process's sink ([`ProcessOptions::sink`](crate::ProcessOptions::sink),
/// a pool's actor) handle answers on the task that read them, without a hop through the sink
/// ([`ProcessOptions::sink_hook`](crate::ProcessOptions::sink_hook)).
///
/// The reading task calls [`sending`](Self::sending) before every event it puts in the sink
/// and [`answers`](Self::answers) with the answers of each read (after the output pumps
/// drained, with a log sink) before any of them goes to the sink. What the hook leaves in the
/// list goes to the sink, in order, as [`ProcessEvent::Answer`]s. So the owner knows whether
/// anything this process sent earlier is still in the sink: it must not take an answer that
/// would overtake, say, a `progress` of the same job still waiting there.
pub trait SinkHook: Send + Sync + 'static {
    /// An event is about to go to the sink.
    fn sending(&self);
    /// The answers of one read of worker `pid`'s channel, in order. Remove (from the front)
    /// those handled here; the rest go to the sink.
    fn answers(&self, pid: u32, answers: &mut Answers);
}

#[derive(Clone)]
pub(crate) struct Emitter {
    pub(crate) process: broadcast::Sender<ProcessEvent>,
    pub(crate) manager: Option<broadcast::Sender<ProcessEvent>>,
    /// Gets every event but log lines, reliably (the pool's actor).
    pub(crate) sink: Option<mpsc::UnboundedSender<ProcessEvent>>,
    /// Told of every event put in the sink; offered the answers first.
    pub(crate) hook: Option<Arc<dyn SinkHook>>,
}

impl Emitter {
    pub(crate) fn emit(&self, ev: ProcessEvent) {
        // Clone only for streams somebody listens to (a result can be megabytes), and move the
        // event into the last of them: a pool's answer is never copied.
        let sink = self
            .sink
            .as_ref()
            .filter(|_| !matches!(ev, ProcessEvent::Log { .. }));
        if let (Some(_), Some(hook)) = (sink, &self.hook) {
            hook.sending();
        }
        let manager = self
            .manager
            .as_ref()
            .filter(|m| ev.for_manager() && m.receiver_count() > 0);
        let process = ev.for_process() && self.process.receiver_count() > 0;
        if process {
            if let Some(sink) = sink {
                let _ = sink.send(ev.clone());
            }
            if let Some(m) = manager {
                let _ = m.send(ev.clone());
            }
            let _ = self.process.send(ev);
        } else if let Some(m) = manager {
            if let Some(sink) = sink {
                let _ = sink.send(ev.clone());
            }
            let _ = m.send(ev);
        } else if let Some(sink) = sink {
            let _ = sink.send(ev);
        }
    }
}
