//! Timers that wait for what a worker already sent (host reading, [`crate::HostReader`]).
//!
//! When the host's thread reads the workers' channels, an answer may sit unread in a socket
//! while that thread runs its own code. A timer whose decision depends on what a worker said
//! (a job's timeout, a cancel's grace, a ping, a broadcast's acknowledgements, the start) must
//! not decide on a worker's silence that is only the host's delay: while the worker's input
//! waits to be handled (in its socket, in its process's queue, or in the pool's sink), the
//! worker's process is told to read its channel itself and the timer fires again a
//! millisecond later. At most [`MAX_DEFERRALS`] times: a worker that never stops writing
//! cannot hold a decision off for ever.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Actor, Timer};

/// How long a timer is put off each time.
const DEFER: Duration = Duration::from_millis(1);
/// How many times one timer may be put off (then it decides on what was handled).
const MAX_DEFERRALS: u32 = 50;
/// The most timers counted at once.
const MAX_TRACKED: usize = 4096;

impl Actor {
    /// Puts `t` off if what it decides on may still be unread; true when it did.
    pub(super) fn defer_for_input(&mut self, t: Timer) -> bool {
        if self.cfg.active_host_reader().is_none() {
            return false;
        }
        let waiting: Vec<u32> = match t {
            Timer::JobTimeout { pid, .. }
            | Timer::CancelGrace { pid, .. }
            | Timer::PingTimeout { pid, .. }
            | Timer::StopGrace(pid)
            | Timer::SoftKillBusy(pid) => self
                .workers
                .get(&pid)
                .filter(|w| w.process.input_pending())
                .map(|_| vec![pid])
                .unwrap_or_default(),
            Timer::Broadcast(_) | Timer::StartTimeout | Timer::ShutdownDrain => self
                .workers
                .iter()
                .filter(|(_, w)| w.process.input_pending())
                .map(|(pid, _)| *pid)
                .collect(),
            Timer::Retry(_) | Timer::Respawn => return false,
        };
        let in_sink = self.in_sink.load(Ordering::Acquire) > 0;
        if waiting.is_empty() && !in_sink {
            self.deferred.remove(&t);
            return false;
        }
        if self.deferred.len() >= MAX_TRACKED {
            // Entries of timers removed while put off (a job answered meanwhile).
            self.deferred.clear();
        }
        let n = self.deferred.entry(t).or_insert(0);
        if *n >= MAX_DEFERRALS {
            self.deferred.remove(&t);
            return false;
        }
        *n += 1;
        for pid in waiting {
            if let Some(w) = self.workers.get(&pid) {
                w.process.drain_input();
            }
        }
        let key = self.timers.insert(t, DEFER);
        // A job's timer is removed by its answer: it must know the new key.
        if let Timer::JobTimeout { id, pid } | Timer::CancelGrace { id, pid } = t {
            if let Some(f) = self
                .workers
                .get_mut(&pid)
                .and_then(|w| w.in_flight.get_mut(&id))
            {
                f.timer = Some(key);
            }
        }
        true
    }
}
