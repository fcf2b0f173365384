//! The actor's timer queue: a `DelayQueue` that never panics. Every duration is clamped with
//! [`offload_process::timer::clamp`] (`DelayQueue::insert` panics above 2^36 ms) and a stale
//! key is ignored on removal instead of panicking.

use std::task::{Context, Poll};
use std::time::Duration;

use offload_process::timer;
use tokio_util::time::{delay_queue, DelayQueue};

pub(crate) use delay_queue::Key;

/// A `DelayQueue` whose inserts clamp and whose removals tolerate stale keys.
#[derive(Debug)]
pub(crate) struct Timers<T> {
    queue: DelayQueue<T>,
}

impl<T> Timers<T> {
    pub(crate) fn new() -> Self {
        Self {
            queue: DelayQueue::new(),
        }
    }

    /// Arms `value` to expire after `after`, clamped to [`timer::MAX_TIMER`].
    pub(crate) fn insert(&mut self, value: T, after: Duration) -> Key {
        self.queue.insert(value, timer::clamp(after))
    }

    /// Disarms `key`; a key that already expired is ignored.
    pub(crate) fn remove(&mut self, key: &Key) {
        let _ = self.queue.try_remove(key);
    }

    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.queue
            .poll_expired(cx)
            .map(|e| e.map(delay_queue::Expired::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn huge_durations_are_clamped_not_panicking() {
        let mut t = Timers::new();
        let a = t.insert(1, Duration::MAX);
        let _b = t.insert(2, Duration::from_millis(100_000_000_000));
        t.remove(&a);
        t.remove(&a);
        let _c = t.insert(3, Duration::ZERO);
        let got = std::future::poll_fn(|cx| t.poll_expired(cx)).await;
        assert_eq!(got, Some(3));
    }
}
