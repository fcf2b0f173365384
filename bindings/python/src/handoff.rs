//! The end of an executor call, handed straight to a caller that waits for it.
//!
//! A call's end normally reaches Python through the delivery thread (`deliver.rs`): the runtime
//! queues it, the delivery thread takes the GIL and settles the future, and the caller blocked
//! in `future.result()` wakes: two thread hops after the answer arrives. When a caller already
//! waits in `NativeRun.take_end` (`_CallFuture.result()` and `exception()`), the runtime hands
//! the end to it instead ([`Handoff::offer`]) and the caller settles the future itself: one hop,
//! and the delivery thread is not woken at all. Nobody waiting: the end goes to the delivery
//! thread as before, so callbacks, `concurrent.futures.wait` and asyncio see every end. A call
//! with an `on_progress` callback always ends through the delivery thread ([`Handoff::pass`]),
//! so its progress values, queued there, all run before its future is done.
//!
//! Tested from Python (the crate's tests are pytest's): `test_executor.py`'s
//! `test_result_timeout_then_many_waiters_see_the_same_end`.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::lock;

/// Where one call's end goes: to a waiting caller, or back to the runtime for delivery.
pub(crate) struct Handoff<T> {
    state: Mutex<State<T>>,
    cv: Condvar,
}

struct State<T> {
    /// Callers inside [`Handoff::wait`].
    waiting: usize,
    /// The end, handed over and not taken yet.
    end: Option<T>,
    /// The end was offered (taken by a caller or queued for delivery).
    offered: bool,
}

/// What [`Handoff::wait`] saw.
pub(crate) enum Waited<T> {
    /// The end: this caller settles the future.
    End(T),
    /// The end went to the delivery thread or to another caller: the future's own wait
    /// sees it.
    Elsewhere,
    /// Nothing yet.
    TimedOut,
}

impl<T> Default for Handoff<T> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                waiting: 0,
                end: None,
                offered: false,
            }),
            cv: Condvar::new(),
        }
    }
}

impl<T> Handoff<T> {
    /// From the runtime, once: gives `end` to a waiting caller, or returns it when nobody
    /// waits (the caller then queues it for delivery).
    pub(crate) fn offer(&self, end: T) -> Option<T> {
        let mut s = lock(&self.state);
        s.offered = true;
        if s.waiting == 0 {
            return Some(end);
        }
        s.end = Some(end);
        drop(s);
        self.cv.notify_one();
        None
    }

    /// From the runtime, once, instead of [`offer`](Self::offer) when the end must go through
    /// the delivery thread (after the call's progress callbacks queued there): a waiting caller
    /// stops waiting and reads the future as the delivery thread settles it.
    pub(crate) fn pass(&self) {
        lock(&self.state).offered = true;
        self.cv.notify_all();
    }

    /// Waits up to `slice` for the end (without the GIL: the caller detaches). A caller that
    /// wakes always takes an end that is there, so an end handed over is never lost.
    pub(crate) fn wait(&self, slice: Duration) -> Waited<T> {
        let mut s = lock(&self.state);
        if !s.offered {
            s.waiting += 1;
            s = self
                .cv
                .wait_timeout_while(s, slice, |s| !s.offered)
                .map(|(s, _)| s)
                .unwrap_or_else(|e| e.into_inner().0);
            s.waiting -= 1;
        }
        match s.end.take() {
            Some(end) => Waited::End(end),
            None if s.offered => Waited::Elsewhere,
            None => Waited::TimedOut,
        }
    }
}
