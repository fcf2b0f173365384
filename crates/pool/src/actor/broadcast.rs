//! Broadcasts: an event sent to every ready worker (and to a soft-killed one still waiting
//! for its `ready()`: seed 001 lets custom events flow during a soft kill), answered with the map of which workers
//! acknowledged it before its timeout.

use std::collections::BTreeMap;
use std::time::Duration;

use offload_protocol::{Broadcast, ToWorker};
use serde_json::Value;
use tokio::sync::oneshot;

use super::{Actor, Timer};
use crate::types::WorkerState;

impl Actor {
    pub(super) fn broadcast(
        &mut self,
        name: String,
        data: Value,
        timeout: Duration,
        reply: oneshot::Sender<BTreeMap<u32, bool>>,
    ) {
        let n = self.next_broadcast;
        self.next_broadcast += 1;
        let id = format!("b{n}");
        let mut acks = BTreeMap::new();
        for (&pid, w) in &self.workers {
            if w.state == WorkerState::Ready || w.soft_kill_waiting.is_some() {
                let msg =
                    ToWorker::Event(Broadcast::new(name.clone(), data.clone(), Some(id.clone())));
                if w.process.send(msg).is_ok() {
                    acks.insert(pid, false);
                }
            }
        }
        if acks.is_empty() {
            let _ = reply.send(acks);
            return;
        }
        self.timers.insert(Timer::Broadcast(n), timeout);
        self.broadcasts.insert(n, (acks, reply));
    }

    pub(super) fn on_ack(&mut self, pid: u32, id: &str) {
        let Some(n) = id.strip_prefix('b').and_then(|n| n.parse::<u64>().ok()) else {
            return;
        };
        let done = match self.broadcasts.get_mut(&n) {
            Some((acks, _)) => {
                if let Some(a) = acks.get_mut(&pid) {
                    *a = true;
                }
                acks.values().all(|a| *a)
            }
            None => false,
        };
        if done {
            if let Some((acks, reply)) = self.broadcasts.remove(&n) {
                let _ = reply.send(acks);
            }
        }
    }

    /// A broadcast's time is up: its caller gets the acks so far.
    pub(super) fn on_broadcast_timeout(&mut self, n: u64) {
        if let Some((acks, reply)) = self.broadcasts.remove(&n) {
            let _ = reply.send(acks);
        }
    }
}
