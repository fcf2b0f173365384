//! The guard returned by every pick: it holds one unit of its target's in-flight count.
//!
//! The count *is* the number of live guards: each target owns one [`Slot`] handle, each [`Pick`]
//! one more reference to the same shared allocation, and the in-flight count is the reference
//! count minus the target's own. So a pick costs one atomic increment and its drop one atomic
//! decrement, and the count can neither be decremented twice nor fall below zero: there is no
//! decrement to get wrong. Only this module can add a reference ([`Slot`] is not `Clone`).

use std::fmt;
use std::sync::Arc;

use crate::TargetId;

/// A target's share of the counter: the target's own reference.
pub(crate) struct Slot(Arc<TargetId>);

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl Slot {
    pub(crate) fn new(id: TargetId) -> Self {
        Self(Arc::new(id))
    }

    /// The number of live picks of this target.
    #[inline]
    pub(crate) fn in_flight(&self) -> u64 {
        // The target's own reference is not a pick. `usize` to `u64` is lossless here.
        (Arc::strong_count(&self.0) - 1) as u64
    }
}

/// One pick: the chosen target's id, holding one unit of that target's in-flight count.
///
/// The balancer counts a pick as in flight from the moment it is returned until the `Pick` is
/// dropped, so a caller cannot forget to decrement: keep the `Pick` alive exactly as long as the
/// work runs (move it into the task that runs the job; it is `Send + Sync + 'static`).
///
/// Dropping decrements exactly once, and a count never goes below zero. It stays correct when
/// the target was removed (or the balancer dropped) in the meantime: a removed target's picks
/// are detached from the balancer, and a target added again under the same id starts a fresh
/// count from zero.
#[must_use = "dropping a Pick at once ends its in-flight count; keep it while the work runs"]
pub struct Pick {
    id: Arc<TargetId>,
}

impl Pick {
    /// Counts one more in-flight pick on `slot`.
    #[inline]
    pub(crate) fn new(slot: &Slot) -> Self {
        Self {
            id: Arc::clone(&slot.0),
        }
    }

    /// The id of the picked target.
    #[must_use]
    pub fn id(&self) -> &TargetId {
        &self.id
    }
}

impl fmt::Debug for Pick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pick").field("id", &*self.id).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_static<T: Send + Sync + 'static>() {}

    #[test]
    fn pick_is_send_and_static() {
        assert_send_sync_static::<Pick>();
    }

    #[test]
    fn the_count_is_the_number_of_live_picks() {
        let slot = Slot::new(TargetId::from(1));
        assert_eq!(slot.in_flight(), 0);
        let a = Pick::new(&slot);
        let b = Pick::new(&slot);
        assert_eq!(slot.in_flight(), 2);
        drop(a);
        assert_eq!(slot.in_flight(), 1);
        drop(b);
        assert_eq!(slot.in_flight(), 0);
    }

    #[test]
    fn picks_outlive_their_slot_and_move_across_threads() {
        let slot = Slot::new(TargetId::from("w"));
        let p = Pick::new(&slot);
        let q = Pick::new(&slot);
        drop(slot); // the target was removed
        assert_eq!(p.id(), &TargetId::from("w"));
        let h = std::thread::spawn(move || drop(p));
        h.join().unwrap();
        drop(q);
    }

    #[test]
    fn concurrent_drops_all_count() {
        let slot = Slot::new(TargetId::from(7));
        let picks: Vec<Pick> = (0..1_000).map(|_| Pick::new(&slot)).collect();
        assert_eq!(slot.in_flight(), 1_000);
        let mut rest = picks;
        let half = rest.split_off(500);
        let h = std::thread::spawn(move || drop(half));
        drop(rest);
        h.join().unwrap();
        assert_eq!(slot.in_flight(), 0);
    }
}
