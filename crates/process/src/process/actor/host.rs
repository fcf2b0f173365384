//! The actor's side of a channel the host reads (`host_read.rs`): the inputs the host hands
//! over through the queue, and the actor's own reads of the socket before a decision.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Actor, ExitDrain};
use crate::process::host_read::{HostChannel, HostInput};

/// How often the actor looks at the socket again while it waits for the worker's last frames
/// after its exit (nothing wakes it: the socket is registered with no runtime).
const EXIT_POLL: std::time::Duration = std::time::Duration::from_millis(2);

/// The channel and the queue of what the host read.
pub(in crate::process) struct HostSide {
    pub(in crate::process) channel: Arc<HostChannel>,
    pub(in crate::process) rx: mpsc::UnboundedReceiver<HostInput>,
    /// The worker closed its end, or the actor stopped reading (a protocol violation).
    pub(in crate::process) ended: bool,
    /// Inputs of the queue handled and not yet counted off (see [`Actor::settle_host`]).
    pub(in crate::process) handled: usize,
}

/// The next input of the host's queue (never, without host reading).
pub(super) async fn next_input(host: &mut Option<HostSide>) -> HostInput {
    match host {
        // The channel holds the sender for as long as the actor holds the channel.
        Some(h) => match h.rx.recv().await {
            Some(input) => input,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

impl Actor {
    /// The channel is read, by the actor's reader or by the host.
    pub(super) fn reading(&self) -> bool {
        self.reader.is_some() || self.host.as_ref().is_some_and(|h| !h.ended)
    }

    /// An input from the host's queue, and the rest of the queue without the select. They are
    /// counted off the queue only after their answers were handed over ([`Self::settle_host`]):
    /// until then the host gives later answers to the actor too, so none overtakes them.
    pub(super) fn on_queued_input(&mut self, first: HostInput) {
        let mut n = 0;
        let mut backlog = false;
        let mut next = Some(first);
        while let Some(input) = next {
            if matches!(input, HostInput::Backlog) {
                backlog = true;
            } else {
                self.on_host_input(input);
                n += 1;
            }
            next = self.host.as_mut().and_then(|h| h.rx.try_recv().ok());
        }
        if let Some(h) = &mut self.host {
            h.handled += n;
        }
        if backlog {
            // The host stopped reading: what was ahead is handled, the socket is ours to read
            // (`drain_host` hands those inputs' answers over first, then counts them off).
            if let Some(h) = &self.host {
                h.channel.backlog_taken();
            }
            self.drain_host();
        }
    }

    /// After the loop's answers were handed over: the inputs handled leave the count.
    pub(super) fn settle_host(&mut self) {
        if let Some(h) = &mut self.host {
            for _ in 0..std::mem::take(&mut h.handled) {
                h.channel.handled();
            }
        }
    }

    fn on_host_input(&mut self, input: HostInput) {
        if self.host.as_ref().is_none_or(|h| h.ended) {
            // After a violation or the end: nothing more counts.
            return;
        }
        match input {
            HostInput::Message(m, credit) => self.on_message(m, credit),
            HostInput::Answer(id, result) => self.on_answer(id, result),
            HostInput::Line(line) => self.on_frame(Ok(Some(line))),
            HostInput::Violation(message) => self.protocol_violation(message),
            HostInput::Cut(_) if self.stopped_by_us() => {
                // Killed in the middle of a write: the end of the channel, no violation.
                if let Some(h) = &mut self.host {
                    h.ended = true;
                }
            }
            HostInput::Cut(message) => self.protocol_violation(message),
            HostInput::End => {
                if let Some(h) = &mut self.host {
                    h.ended = true;
                }
            }
            // Only the queue carries it (`on_queued_input`).
            HostInput::Backlog => {}
        }
    }

    /// Reads the socket here, under the channel's lock: first what the host queued, then what
    /// the socket holds, then the answers go to the hook; the host's next read comes after.
    pub(super) fn drain_host(&mut self) {
        self.drain_host_with(false);
    }

    /// [`Self::drain_host`]; with `force`, past the backpressure bound.
    fn drain_host_with(&mut self, force: bool) {
        let Some(channel) = self.host.as_ref().map(|h| Arc::clone(&h.channel)) else {
            return;
        };
        let mut lock = channel.lock();
        let mut queued = 0;
        while let Some(input) = self.host.as_mut().and_then(|h| h.rx.try_recv().ok()) {
            if matches!(input, HostInput::Backlog) {
                // Read below, now.
                if let Some(h) = &self.host {
                    h.channel.backlog_taken();
                }
                continue;
            }
            self.on_host_input(input);
            queued += 1;
        }
        let mut holds = false;
        if self.host.as_ref().is_some_and(|h| !h.ended) {
            for input in channel.read_for_actor(&mut lock, force) {
                self.on_host_input(input);
            }
            holds = HostChannel::holds(&lock);
        }
        drop(lock);
        if holds {
            // Inputs wait for credits: the host reads them once listeners took events.
            channel.wait_for_credits();
        }
        // No log sink with host reading: the answers need no drain of the output pumps.
        self.hand_over_answers();
        for _ in 0..queued {
            channel.handled();
        }
        self.settle_host();
    }

    /// After the exit: the last frames, until the end of file or `until`; then the host stops.
    /// With backpressure, the wait lasts as long as the listeners take events (`ExitDrain`).
    pub(super) async fn drain_host_at_exit(&mut self, until: Instant) {
        let Some(channel) = self.host.as_ref().map(|h| Arc::clone(&h.channel)) else {
            return;
        };
        let mut drain = ExitDrain::new(until, self.flow.as_ref());
        loop {
            self.drain_host_with(drain.stalled());
            if self.host.as_ref().is_none_or(|h| h.ended) {
                break;
            }
            if channel.input_pending() && drain.wait_for_listeners(self.flow.as_ref()).await {
                continue;
            }
            if Instant::now() >= drain.until {
                break;
            }
            tokio::time::sleep(EXIT_POLL).await;
        }
        self.stop_host();
    }

    /// The actor reads nothing more, and the host stops reading at its next read.
    pub(super) fn stop_host(&mut self) {
        if let Some(h) = &mut self.host {
            h.ended = true;
            h.channel.stop();
        }
    }

    /// The channel learns how many calls wait for an answer.
    pub(super) fn count_calls(&self) {
        self.count_calls_with(0);
    }

    /// The same, with `more` calls about to be sent.
    pub(super) fn count_calls_with(&self, more: usize) {
        if let Some(h) = &self.host {
            h.channel.set_calls(self.pending_calls.len() + more);
        }
    }
}
