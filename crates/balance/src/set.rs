//! The target list shared by every algorithm, and the eligibility rule.

use crate::pick::Slot;
use crate::{Key, LoadSample, Target, TargetId};
use std::collections::HashMap;

/// One target with its live state.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) target: Target,
    pub(crate) slot: Slot,
    pub(crate) load: LoadSample,
}

impl Entry {
    pub(crate) fn new(target: Target) -> Self {
        Self {
            slot: Slot::new(target.id.clone()),
            target,
            load: LoadSample::default(),
        }
    }

    #[inline]
    pub(crate) fn id(&self) -> &TargetId {
        &self.target.id
    }

    #[inline]
    pub(crate) fn weight(&self) -> f64 {
        self.target.weight
    }

    #[inline]
    pub(crate) fn in_flight(&self) -> u64 {
        self.slot.in_flight()
    }

    /// Whether the in-flight count is below the capacity.
    #[inline]
    pub(crate) fn has_room(&self) -> bool {
        self.target.capacity.is_none_or(|c| self.in_flight() < c)
    }
}

/// Targets in insertion order, with an id index.
#[derive(Debug, Default)]
pub(crate) struct TargetSet {
    entries: Vec<Entry>,
    by_int: HashMap<i64, usize>,
    by_str: HashMap<String, usize>,
}

impl TargetSet {
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    pub(crate) fn entry(&self, i: usize) -> &Entry {
        &self.entries[i]
    }

    pub(crate) fn entry_mut(&mut self, i: usize) -> &mut Entry {
        &mut self.entries[i]
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(crate) fn find(&self, key: Key<'_>) -> Option<usize> {
        match key {
            Key::Int(i) => self.by_int.get(&i).copied(),
            Key::Str(s) => self.by_str.get(s).copied(),
        }
    }

    /// Appends an entry whose id is known to be absent.
    pub(crate) fn push(&mut self, entry: Entry) {
        let i = self.entries.len();
        self.index(entry.id(), i);
        self.entries.push(entry);
    }

    /// Removes entry `i`, shifting the later ones down by one (order is kept).
    pub(crate) fn remove(&mut self, i: usize) -> Entry {
        let entry = self.entries.remove(i);
        self.reindex();
        entry
    }

    /// Replaces all entries.
    pub(crate) fn replace(&mut self, entries: Vec<Entry>) {
        self.entries = entries;
        self.reindex();
    }

    /// Removes and returns all entries.
    pub(crate) fn take(&mut self) -> Vec<Entry> {
        self.by_int.clear();
        self.by_str.clear();
        std::mem::take(&mut self.entries)
    }

    fn index(&mut self, id: &TargetId, i: usize) {
        match id {
            TargetId::Int(n) => self.by_int.insert(*n, i),
            TargetId::Str(s) => self.by_str.insert(s.clone(), i),
        };
    }

    fn reindex(&mut self) {
        self.by_int.clear();
        self.by_str.clear();
        for (i, e) in self.entries.iter().enumerate() {
            match &e.target.id {
                TargetId::Int(n) => self.by_int.insert(*n, i),
                TargetId::Str(s) => self.by_str.insert(s.clone(), i),
            };
        }
    }
}

/// What one pick asks for: the key, and which targets are eligible.
///
/// A target is eligible when it is not excluded (already chosen by the same `pick_multi`), has
/// room (in-flight below capacity), and passes the caller's filter.
pub(crate) struct Request<'a> {
    pub(crate) key: Option<Key<'a>>,
    pub(crate) filter: Option<&'a dyn Fn(&TargetId) -> bool>,
    pub(crate) exclude: &'a [usize],
}

impl Request<'_> {
    #[inline]
    pub(crate) fn eligible(&self, set: &TargetSet, i: usize) -> bool {
        let e = set.entry(i);
        e.has_room() && !self.exclude.contains(&i) && self.filter.is_none_or(|f| f(e.id()))
    }
}
