//! The affinity table: which worker a key is bound to (`RunOptions::key`,
//! [`ChildPool::bound_child`](crate::ChildPool::bound_child), the seed's `boundMap`).
//!
//! Bounded: at most [`MAX_BINDINGS`] keys with no job on its way or running. A key is "used"
//! when it is bound or looked up; past the bound the least recently used quarter of the keys
//! without a job in flight is forgotten in one pass (so a stream of new keys costs O(1)
//! amortized, not a scan per key). A key with a job in flight is never forgotten (its next job
//! must go where that one runs); such keys can take the table past the bound, by at most the
//! pool's jobs in flight. A forgotten key is bound again at its next job, to a worker the
//! balancer picks for the key (the same one again when the algorithm hashes keys and the
//! workers did not change). Each worker's count of keys is kept alongside, so spreading a new
//! key by load is O(workers), not O(keys).

use std::collections::HashMap;

/// The most keys a pool keeps bound at once.
pub const MAX_BINDINGS: usize = 65_536;

struct Entry {
    pid: u32,
    used: u64,
    /// Jobs of this key in flight on `pid`.
    running: u32,
}

#[derive(Default)]
pub(super) struct Bindings {
    keys: HashMap<String, Entry>,
    per_worker: HashMap<u32, usize>,
    /// Keys with a job in flight (`running > 0`): they do not count against the bound, so a
    /// forgetting pass always finds a quarter of the bound to forget (O(1) amortized per key).
    busy: usize,
    clock: u64,
}

impl Bindings {
    /// The worker `key` is bound to (marks the key used).
    pub(super) fn get(&mut self, key: &str) -> Option<u32> {
        self.clock += 1;
        let e = self.keys.get_mut(key)?;
        e.used = self.clock;
        Some(e.pid)
    }

    /// Binds `key` to `pid`, forgetting the least recently used keys past [`MAX_BINDINGS`].
    pub(super) fn bind(&mut self, key: &str, pid: u32) {
        self.clock += 1;
        let used = self.clock;
        let fresh = Entry {
            pid,
            used,
            running: 0,
        };
        if let Some(old) = self.keys.insert(key.to_owned(), fresh) {
            self.uncount(&old);
        }
        *self.per_worker.entry(pid).or_default() += 1;
        if self.keys.len() - self.busy > MAX_BINDINGS {
            self.forget_oldest(MAX_BINDINGS / 4);
        }
    }

    /// A job of `key` is on its way to `pid`, the worker it is bound to.
    pub(super) fn started(&mut self, key: &str, pid: u32) {
        if let Some(e) = self.keys.get_mut(key).filter(|e| e.pid == pid) {
            e.running += 1;
            if e.running == 1 {
                self.busy += 1;
            }
        }
    }

    /// A job of `key` left `pid` (answered, or its worker is gone): when it was the key's last
    /// one in flight, the key may be forgotten again. Ignored when the key is no longer bound
    /// to `pid` (rebound since, or forgotten with its worker).
    pub(super) fn ended(&mut self, key: &str, pid: u32) {
        if let Some(e) = self
            .keys
            .get_mut(key)
            .filter(|e| e.pid == pid && e.running > 0)
        {
            e.running -= 1;
            if e.running == 0 {
                self.busy -= 1;
            }
        }
    }

    /// Forgets `key`.
    pub(super) fn unbind(&mut self, key: &str) {
        if let Some(old) = self.keys.remove(key) {
            self.uncount(&old);
        }
    }

    /// Forgets every key bound to `pid` (the worker is gone).
    pub(super) fn forget_worker(&mut self, pid: u32) {
        if self.per_worker.remove(&pid).is_some() {
            let mut busy = 0;
            self.keys.retain(|_, e| {
                let keep = e.pid != pid;
                if !keep && e.running > 0 {
                    busy += 1;
                }
                keep
            });
            self.busy -= busy;
        }
    }

    /// How many keys are bound to `pid`.
    pub(super) fn count(&self, pid: u32) -> usize {
        self.per_worker.get(&pid).copied().unwrap_or(0)
    }

    /// How many keys are bound.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys.len()
    }

    /// `old` left the table: its worker's count (and the busy count) follow.
    fn uncount(&mut self, old: &Entry) {
        if old.running > 0 {
            self.busy -= 1;
        }
        self.uncount_worker(old.pid);
    }

    fn uncount_worker(&mut self, pid: u32) {
        if let Some(n) = self.per_worker.get_mut(&pid) {
            *n -= 1;
            if *n == 0 {
                self.per_worker.remove(&pid);
            }
        }
    }

    /// Forgets the `n` least recently used keys that have no job in flight (fewer when fewer
    /// have none), never the key used last (the one just bound: its job is about to start).
    fn forget_oldest(&mut self, n: usize) {
        let now = self.clock;
        let mut used: Vec<u64> = self
            .keys
            .values()
            .filter(|e| e.running == 0 && e.used < now)
            .map(|e| e.used)
            .collect();
        let n = n.min(used.len());
        if n == 0 {
            return;
        }
        // Uses are distinct (one clock tick each): the n-th smallest splits the idle keys.
        let (_, &mut cut, _) = used.select_nth_unstable(n - 1);
        let mut gone = Vec::with_capacity(n);
        self.keys.retain(|_, e| {
            let keep = e.used > cut || e.running > 0 || e.used == now;
            if !keep {
                gone.push(e.pid);
            }
            keep
        });
        for pid in gone {
            self.uncount_worker(pid);
        }
        tracing::debug!(
            forgotten = n,
            limit = MAX_BINDINGS,
            "the pool's affinity table is full: the least recently used keys were forgotten"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_of_new_keys_stays_bounded_and_keeps_the_recent_ones() {
        let mut b = Bindings::default();
        b.bind("hot", 7);
        for i in 0..(3 * MAX_BINDINGS) {
            b.bind(&format!("k{i}"), 1 + u32::try_from(i % 3).unwrap());
            if i % 1_000 == 0 {
                assert_eq!(b.get("hot"), Some(7), "a key in use is kept");
            }
            assert!(b.len() <= MAX_BINDINGS);
        }
        let last = format!("k{}", 3 * MAX_BINDINGS - 1);
        assert_eq!(
            b.get(&last),
            Some(1 + u32::try_from((3 * MAX_BINDINGS - 1) % 3).unwrap())
        );
        assert_eq!(b.get("k0"), None, "the oldest keys were forgotten");
        let counted: usize = [1, 2, 3, 7].iter().map(|&p| b.count(p)).sum();
        assert_eq!(counted, b.len(), "the per-worker counts follow the table");
    }

    #[test]
    fn a_key_with_a_job_in_flight_is_never_forgotten() {
        let mut b = Bindings::default();
        b.bind("busy", 9);
        b.started("busy", 9);
        b.started("busy", 9);
        for i in 0..(2 * MAX_BINDINGS) {
            b.bind(&format!("k{i}"), 1);
        }
        assert_eq!(b.get("busy"), Some(9), "its jobs still run on 9");
        assert!(b.len() <= MAX_BINDINGS + 1);
        // A job of another worker's key, or of a key bound elsewhere since, changes nothing.
        b.ended("busy", 1);
        b.ended("busy", 9);
        for i in 0..(2 * MAX_BINDINGS) {
            b.bind(&format!("m{i}"), 1);
        }
        assert_eq!(b.get("busy"), Some(9), "one of its jobs is still in flight");
        b.ended("busy", 9);
        for i in 0..(2 * MAX_BINDINGS) {
            b.bind(&format!("n{i}"), 1);
        }
        assert_eq!(b.get("busy"), None, "forgotten once idle and old");
        assert!(b.len() <= MAX_BINDINGS);
        // Every key in flight: the table grows past the bound by those keys only; the bound
        // counts the idle keys, so a pass forgets a quarter of it once they pass it.
        let mut c = Bindings::default();
        for i in 0..(MAX_BINDINGS + 10) {
            let k = format!("r{i}");
            c.bind(&k, 2);
            c.started(&k, 2);
        }
        assert_eq!(c.len(), MAX_BINDINGS + 10);
        assert_eq!(c.count(2), MAX_BINDINGS + 10);
        c.bind("fresh", 3);
        assert_eq!(c.get("fresh"), Some(3), "the key just bound is kept");
        c.ended("r0", 2);
        c.bind("fresh2", 3);
        assert_eq!(c.get("r0"), Some(2), "3 idle keys are under the bound");
        for i in 0..MAX_BINDINGS {
            c.bind(&format!("i{i}"), 3);
        }
        assert_eq!(c.get("r0"), None, "the oldest idle key went");
        assert_eq!(c.get("r1"), Some(2), "a key in flight stays");
        assert!(c.len() - c.busy <= MAX_BINDINGS);
        assert_eq!(c.busy, MAX_BINDINGS + 9);
    }

    #[test]
    fn counts_follow_rebinding_unbinding_and_a_worker_leaving() {
        let mut b = Bindings::default();
        b.bind("a", 1);
        b.bind("b", 1);
        b.bind("c", 2);
        assert_eq!((b.count(1), b.count(2)), (2, 1));
        b.bind("a", 2);
        assert_eq!((b.count(1), b.count(2)), (1, 2));
        b.unbind("b");
        assert_eq!((b.count(1), b.count(2)), (0, 2));
        b.forget_worker(2);
        assert_eq!((b.count(2), b.len()), (0, 0));
        assert_eq!(b.get("a"), None);
    }
}
