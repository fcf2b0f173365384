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
        // Clone only for streams somebody listens to (a result can be megabytes), and move the
        // event into the last of them: a pool's answer is never copied.
        let sink = self
            .sink
            .as_ref()
            .filter(|_| !matches!(ev, ProcessEvent::Log { .. }));
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
