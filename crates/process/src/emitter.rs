//! [`Emitter`]: where a process actor's events go — its own broadcast, the manager's stream
//! and a pool's reliable sink — cloned only for streams somebody listens to.

use tokio::sync::{broadcast, mpsc};

use crate::process::ProcessEvent;

#[derive(Clone)]
pub(crate) struct Emitter {
    pub(crate) process: broadcast::Sender<ProcessEvent>,
    pub(crate) manager: Option<broadcast::Sender<ProcessEvent>>,
    /// Gets every event but log lines, reliably (the pool's actor).
    pub(crate) sink: Option<mpsc::UnboundedSender<ProcessEvent>>,
}

impl Emitter {
    pub(crate) fn emit(&self, ev: ProcessEvent) {
        // Clone only for streams somebody listens to (a result can be megabytes).
        if let Some(sink) = &self.sink {
            if !matches!(ev, ProcessEvent::Log { .. }) {
                let _ = sink.send(ev.clone());
            }
        }
        if let Some(m) = &self.manager {
            if ev.for_manager() && m.receiver_count() > 0 {
                let _ = m.send(ev.clone());
            }
        }
        if ev.for_process() && self.process.receiver_count() > 0 {
            let _ = self.process.send(ev);
        }
    }
}
