//! The guard returned by every pick: it holds one unit of its target's in-flight count.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::TargetId;

/// A target's id and its in-flight counter, shared by the balancer and the target's picks.
#[derive(Debug)]
pub(crate) struct Slot {
    id: TargetId,
    in_flight: AtomicU64,
}

impl Slot {
    pub(crate) fn new(id: TargetId) -> Arc<Self> {
        Arc::new(Self {
            id,
            in_flight: AtomicU64::new(0),
        })
    }

    #[inline]
    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// One pick: the chosen target's id, holding one unit of that target's in-flight count.
///
/// The balancer counts a pick as in flight from the moment it is returned until the `Pick` is
/// dropped, so a caller cannot forget to decrement: keep the `Pick` alive exactly as long as the
/// work runs (move it into the task that runs the job; it is `Send + 'static`).
///
/// Dropping decrements exactly once and never below zero. It stays correct when the target was
/// removed (or the balancer dropped) in the meantime: the count of a removed target is detached,
/// and a target added again under the same id starts a fresh count from zero.
#[must_use = "dropping a Pick at once ends its in-flight count; keep it while the work runs"]
pub struct Pick {
    slot: Arc<Slot>,
}

impl Pick {
    /// Counts one more in-flight pick on `slot`.
    pub(crate) fn new(slot: &Arc<Slot>) -> Self {
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        Self {
            slot: Arc::clone(slot),
        }
    }

    /// The id of the picked target.
    #[must_use]
    pub fn id(&self) -> &TargetId {
        &self.slot.id
    }

    /// The picked target's current in-flight count, this pick included.
    #[must_use]
    pub fn in_flight(&self) -> u64 {
        self.slot.in_flight()
    }
}

impl Drop for Pick {
    fn drop(&mut self) {
        // Saturating: the count can only reach zero here if something other than a `Pick`
        // decremented it, which nothing does; never wrap around regardless.
        let _ = self
            .slot
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

impl fmt::Debug for Pick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pick")
            .field("id", &self.slot.id)
            .field("in_flight", &self.slot.in_flight())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_static<T: Send + Sync + 'static>() {}

    #[test]
    fn pick_is_send_and_static() {
        assert_send_static::<Pick>();
    }

    #[test]
    fn drop_decrements_once_and_never_underflows() {
        let slot = Slot::new(TargetId::from(1));
        let a = Pick::new(&slot);
        let b = Pick::new(&slot);
        assert_eq!(slot.in_flight(), 2);
        assert_eq!(a.in_flight(), 2);
        drop(a);
        assert_eq!(slot.in_flight(), 1);
        // Something resets the counter behind the guard's back: dropping must not wrap.
        slot.in_flight.store(0, Ordering::Relaxed);
        drop(b);
        assert_eq!(slot.in_flight(), 0);
    }

    #[test]
    fn guard_outlives_its_slot_owner() {
        let slot = Slot::new(TargetId::from("w"));
        let p = Pick::new(&slot);
        drop(slot);
        assert_eq!(p.id(), &TargetId::from("w"));
        let h = std::thread::spawn(move || drop(p));
        h.join().unwrap();
    }
}
