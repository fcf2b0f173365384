//! The pool's event streams: every event ([`ChildPool::events`](crate::ChildPool::events)),
//! and the control events only ([`ChildPool::control_events`](crate::ChildPool::control_events):
//! the workers' lifecycle, health, broadcasts and named job events, without each job's start,
//! progress, retry and end). A subscriber of the second (the Node addon) is not woken for every
//! job, and no job's events are made for it.

use tokio::sync::broadcast;

use crate::types::{JobEvent, PoolEvent};

/// Capacity of each stream.
const CAPACITY: usize = 4096;

#[derive(Debug, Clone)]
pub(crate) struct PoolEvents {
    all: broadcast::Sender<PoolEvent>,
    control: broadcast::Sender<PoolEvent>,
}

impl PoolEvents {
    pub(crate) fn new() -> Self {
        Self {
            all: broadcast::channel(CAPACITY).0,
            control: broadcast::channel(CAPACITY).0,
        }
    }

    /// Somebody listens to every event (a job's lifecycle events are made only then).
    pub(crate) fn receiver_count(&self) -> usize {
        self.all.receiver_count()
    }

    /// Sends `ev` to the streams that listen for it.
    pub(crate) fn send(&self, ev: PoolEvent) {
        let all = self.all.receiver_count() > 0;
        let control = self.control.receiver_count() > 0 && !job_lifecycle(&ev);
        match (all, control) {
            (true, true) => {
                let _ = self.control.send(ev.clone());
                let _ = self.all.send(ev);
            }
            (true, false) => {
                let _ = self.all.send(ev);
            }
            (false, true) => {
                let _ = self.control.send(ev);
            }
            (false, false) => {}
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<PoolEvent> {
        self.all.subscribe()
    }

    pub(crate) fn subscribe_control(&self) -> broadcast::Receiver<PoolEvent> {
        self.control.subscribe()
    }
}

/// A job's start, progress, retry or end (not a named event).
fn job_lifecycle(ev: &PoolEvent) -> bool {
    matches!(ev, PoolEvent::Job(e) if !matches!(e, JobEvent::Event { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_subscribers_get_no_job_lifecycle_events() {
        let ev = PoolEvents::new();
        let mut all = ev.subscribe();
        let mut control = ev.subscribe_control();
        ev.send(PoolEvent::Job(JobEvent::Started {
            id: 1,
            pid: 2,
            attempt: 1,
        }));
        ev.send(PoolEvent::Job(JobEvent::Event {
            id: 1,
            pid: 2,
            name: "x".into(),
            data: serde_json::Value::Null,
            receiver: offload_process::Receiver::All,
            credit: offload_process::Credit::default(),
        }));
        assert!(matches!(
            all.try_recv(),
            Ok(PoolEvent::Job(JobEvent::Started { .. }))
        ));
        assert!(matches!(
            all.try_recv(),
            Ok(PoolEvent::Job(JobEvent::Event { .. }))
        ));
        assert!(matches!(
            control.try_recv(),
            Ok(PoolEvent::Job(JobEvent::Event { .. }))
        ));
        assert!(control.try_recv().is_err());
    }
}
