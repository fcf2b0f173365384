//! Backpressure for a worker's events: [`EventFlow`] and the [`Credit`] each event carries.
//!
//! Without it a process's progress, named events and log lines go to bounded broadcast rings,
//! and a listener that falls behind loses the oldest. With it (a process started with
//! [`ProcessOptions::event_backpressure`](crate::ProcessOptions::event_backpressure), which the
//! Node addon sets), whoever reads the worker's channel (its actor, or the host's thread) takes
//! one credit for every progress or event frame before it reads that frame, and the output
//! pumps one for every line: at most `limit` of them are on their way to listeners at once.
//! The credit travels inside the event ([`ProcessEvent`](crate::ProcessEvent), and a pool's
//! `JobEvent`) and comes back when the last copy of the event is dropped: once a listener took
//! it (the addon: once JavaScript has it), or at once when nobody listens. While none is left
//! the channel is not read; the worker's writes then wait in its own socket and memory, as with
//! Node's `child_process` IPC when the parent is busy. Answers, timeouts and kills are not held
//! back by anything but the order of the channel: an answer behind held events waits for them.
//!
//! Every subscriber of such a process's streams must keep reading: an event that waits unread
//! in a ring holds its credit. A ring larger than `limit` therefore never drops one.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Whether a frame from the worker takes a credit: its progress and named events (answers,
/// acknowledgements and the rest never wait for listeners).
pub(crate) fn needs_credit(msg: &offload_protocol::FromWorker) -> bool {
    use offload_protocol::FromWorker as F;
    matches!(msg, F::Progress(_) | F::Event(_))
}

/// The largest `limit` of an [`EventFlow`]: below every event ring of a process and a pool
/// run (256 for a run by default), so a reading subscriber never loses a credited event.
pub const MAX_EVENT_BACKPRESSURE: usize = 128;

/// How long a worker's events may wait for their listeners before its reader says so (a
/// `tracing` warning, once per stall): a receiver that is kept but never read holds the
/// worker's channel, and the answers behind the events, for as long as it lives.
pub const STALL_WARNING: Duration = Duration::from_secs(10);

/// Watches one reader's stalls: since when its reading has been held back, and whether that
/// stall was reported.
#[derive(Debug, Default)]
pub(crate) struct Stall {
    since: Option<Instant>,
    warned: bool,
}

impl Stall {
    /// The reading is `held` back now, or not. Answers when to warn, while a warning is due.
    pub(crate) fn watch(&mut self, held: bool) -> Option<Instant> {
        if !held {
            *self = Self::default();
            return None;
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        (!self.warned).then(|| since + STALL_WARNING)
    }

    /// Reports the stall of worker `pid`'s reading (once, until the reading moves again).
    pub(crate) fn warn(&mut self, pid: u32, flow: &EventFlow) {
        self.warned = true;
        let waited_s = self.since.map_or(0, |s| s.elapsed().as_secs());
        tracing::warn!(
            pid,
            waited_s,
            events_out = flow.out(),
            "the worker's events have waited for their listeners for {waited_s} s: its channel \
             is not read until they take some (event backpressure), and its answers wait behind \
             them; a receiver of its events that is kept must be read, or dropped"
        );
    }
}

/// What is told when credits come back after the flow was exhausted (the host's reader
/// watches the channel again).
type OnRoom = Arc<dyn Fn() + Send + Sync>;

struct Inner {
    /// Credits out.
    out: AtomicUsize,
    limit: usize,
    /// Credits returned in all: a reader waiting at a process's exit sees that the listeners
    /// still take events.
    returned: AtomicU64,
    room: Notify,
    on_room: Mutex<Option<OnRoom>>,
}

/// The credits of one process's events (see the module docs). Cheap to clone: the clones share
/// the count.
#[derive(Clone)]
pub struct EventFlow(Arc<Inner>);

impl std::fmt::Debug for EventFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventFlow")
            .field("out", &self.0.out.load(Ordering::Relaxed))
            .field("limit", &self.0.limit)
            .finish()
    }
}

impl EventFlow {
    /// At most `limit` events out at once (clamped to 1..=[`MAX_EVENT_BACKPRESSURE`]).
    pub fn new(limit: usize) -> Self {
        Self(Arc::new(Inner {
            out: AtomicUsize::new(0),
            limit: limit.clamp(1, MAX_EVENT_BACKPRESSURE),
            returned: AtomicU64::new(0),
            room: Notify::new(),
            on_room: Mutex::new(None),
        }))
    }

    /// The bound.
    pub fn limit(&self) -> usize {
        self.0.limit
    }

    /// Events out now.
    pub fn out(&self) -> usize {
        self.0.out.load(Ordering::Acquire)
    }

    /// No credit is left: read nothing that needs one.
    pub fn exhausted(&self) -> bool {
        self.out() >= self.0.limit
    }

    /// Takes a credit if one is left.
    pub fn take(&self) -> Option<Credit> {
        let mut out = self.0.out.load(Ordering::Acquire);
        loop {
            if out >= self.0.limit {
                return None;
            }
            match self.0.out.compare_exchange_weak(
                out,
                out + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(self.credit()),
                Err(now) => out = now,
            }
        }
    }

    /// Takes a credit whether or not one is left (a reader that must read past the bound: the
    /// last frames at a process's exit once its listeners stopped taking events).
    pub fn force(&self) -> Credit {
        self.0.out.fetch_add(1, Ordering::AcqRel);
        self.credit()
    }

    fn credit(&self) -> Credit {
        Credit(Some(Arc::new(Held(Arc::clone(&self.0)))))
    }

    /// Waits until half the bound came back, if no credit is left now (every waiter wakes).
    pub async fn room(&self) {
        let notified = self.0.room.notified();
        tokio::pin!(notified);
        // Registered before the check: a return between the check and the wait still wakes it.
        notified.as_mut().enable();
        if !self.exhausted() {
            return;
        }
        notified.await;
    }

    /// How many credits came back so far.
    pub fn returned(&self) -> u64 {
        self.0.returned.load(Ordering::Acquire)
    }

    /// `f` runs (on whatever thread returns the credit) each time credits come back after the
    /// flow was exhausted.
    pub fn on_room(&self, f: impl Fn() + Send + Sync + 'static) {
        *self.0.on_room.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(f));
    }
}

/// One event's credit, shared by the event's copies; returned when the last is dropped.
/// [`Credit::default`] is no credit (an event of a process without backpressure).
#[derive(Clone, Default)]
pub struct Credit(Option<Arc<Held>>);

impl Credit {
    /// Whether this is a credit of an [`EventFlow`].
    pub fn is_held(&self) -> bool {
        self.0.is_some()
    }
}

impl std::fmt::Debug for Credit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_held() { "Credit" } else { "NoCredit" })
    }
}

/// Events compare by what they say, not by their credits.
impl PartialEq for Credit {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

struct Held(Arc<Inner>);

impl Drop for Held {
    fn drop(&mut self) {
        let inner = &self.0;
        inner.returned.fetch_add(1, Ordering::AcqRel);
        let before = inner.out.fetch_sub(1, Ordering::AcqRel);
        // Readers wait while the flow is exhausted; wake them once half the bound came back,
        // so that they read a batch, not one frame per wake-up.
        if before == inner.limit / 2 + 1 {
            inner.room.notify_waiters();
            let hook = inner
                .on_room
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(f) = hook {
                f();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn credits_are_bounded_and_come_back_with_the_last_copy() {
        let flow = EventFlow::new(4);
        let credits: Vec<Credit> = (0..4).map(|_| flow.take().unwrap()).collect();
        assert!(flow.exhausted());
        assert!(flow.take().is_none());
        let copy = credits[0].clone();
        drop(credits);
        // One copy still holds its credit.
        assert_eq!(flow.out(), 1);
        assert_eq!(flow.returned(), 3);
        drop(copy);
        assert_eq!(flow.out(), 0);
        assert!(!flow.exhausted());
    }

    #[test]
    fn the_limit_is_clamped() {
        assert_eq!(EventFlow::new(0).limit(), 1);
        assert_eq!(EventFlow::new(1 << 40).limit(), MAX_EVENT_BACKPRESSURE);
    }

    #[test]
    fn the_room_hook_runs_once_half_came_back() {
        let flow = EventFlow::new(8);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        flow.on_room(move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        let mut credits: Vec<Credit> = (0..8).map(|_| flow.take().unwrap()).collect();
        credits.truncate(5);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        credits.pop();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "8 out, 4 back: half the bound"
        );
        credits.clear();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_reader_waiting_for_room_wakes_when_listeners_take_events() {
        let flow = EventFlow::new(2);
        let a = flow.take().unwrap();
        let b = flow.take().unwrap();
        let waiter = {
            let flow = flow.clone();
            tokio::spawn(async move {
                while flow.exhausted() {
                    flow.room().await;
                }
                flow.take().is_some()
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(a);
        assert!(waiter.await.unwrap());
        drop(b);
    }

    #[test]
    fn no_credit_is_not_held() {
        assert!(!Credit::default().is_held());
        assert_eq!(Credit::default(), EventFlow::new(1).take().unwrap());
    }
}
