//! Liveness: at each health sample, an idle ready worker that announced `ping` and has not
//! answered one for `ping_interval` gets a `ping`; its `pong` carries its heap. A worker that
//! does not answer within `ping_timeout` while still idle (an event loop stuck outside any
//! job) is reported as `WorkerUnresponsive`, killed and replaced. A worker running a job is
//! never killed for a late pong: the job's own timeout governs it (a Rust handler may block
//! its thread on purpose).

use std::time::{Duration, Instant};

use offload_protocol::{Ping, ToWorker};

use super::{Actor, Leaving, Timer};
use crate::types::{PoolEvent, WorkerState};

impl Actor {
    /// Sends a `ping` to every idle worker that is due for one.
    pub(super) fn send_pings(&mut self, now: Instant) {
        let Some(interval) = self.cfg.ping_interval else {
            return;
        };
        let timeout = self.cfg.ping_timeout;
        let mut sent = Vec::new();
        for (&pid, w) in &mut self.workers {
            let due = w.pings
                && w.state == WorkerState::Ready
                && w.in_flight.is_empty()
                && w.ping.is_none()
                && now.duration_since(w.last_pong) >= interval;
            if !due {
                continue;
            }
            let n = self.next_ping;
            self.next_ping += 1;
            if w.process
                .send(ToWorker::Ping(Ping::new(format!("p{n}"))))
                .is_ok()
            {
                w.ping = Some((n, now));
                sent.push((pid, n));
            }
        }
        for (pid, n) in sent {
            self.timers.insert(Timer::PingTimeout { pid, n }, timeout);
        }
    }

    pub(super) fn on_pong(
        &mut self,
        pid: u32,
        id: &str,
        heap_used: Option<u64>,
        heap_total: Option<u64>,
    ) {
        let Some(w) = self.workers.get_mut(&pid) else {
            return;
        };
        let n = id.strip_prefix('p').and_then(|n| n.parse::<u64>().ok());
        if n.is_some() && w.ping.map(|(p, _)| p) == n {
            w.ping = None;
        }
        w.last_pong = Instant::now();
        if heap_used.is_some() {
            w.heap_used = heap_used;
            w.heap_total = heap_total;
        }
    }

    pub(super) fn on_ping_timeout(&mut self, pid: u32, n: u64) {
        let Some(w) = self.workers.get_mut(&pid) else {
            return;
        };
        let Some((pending, sent)) = w.ping else {
            return;
        };
        if pending != n {
            return;
        }
        w.ping = None;
        if !w.in_flight.is_empty() || w.state != WorkerState::Ready {
            // A job (or the worker's own stop) is what it is busy with: not a hang.
            return;
        }
        let waited = sent.elapsed();
        tracing::warn!(pool = %self.cfg.name, pid, ?waited, "worker does not answer ping: replacing it");
        w.leaving.get_or_insert(Leaving::Unresponsive);
        w.state = WorkerState::Stopping;
        w.process.start_kill_with(libc::SIGKILL, Duration::ZERO);
        let _ = self.balancer.del(&offload_balance::TargetId::from(pid));
        self.emit(PoolEvent::WorkerUnresponsive { pid, waited });
    }
}
