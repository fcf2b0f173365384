//! The routes of job names already resolved, so a submit does not resolve its job file again
//! (a resolution is 16 system calls; it was 41 % of the runtime threads' CPU in the submit
//! benchmark, `bench/serve/README.md`).
//!
//! What keeps the cache true to the jobs folder:
//! - it is **off until the hot-reload watcher runs** ([`RouteCache::enable`], called by
//!   `reload.rs` once the folder is watched): without the watcher nothing would tell it a file
//!   changed, so every submit resolves as before;
//! - every batch of file events clears it ([`RouteCache::invalidate`], from
//!   `Engine::files_changed`), and a resolution that started before an event is not stored
//!   after it (the generation it read is stale);
//! - a hit checks that its file still is a file (one `statx` instead of 16), so a removed or
//!   renamed job is refused at once, before the watcher's debounced event;
//! - only routes that succeeded are stored: an unknown job is resolved again on every submit,
//!   so a job file created later is found at once;
//! - it holds at most [`ROUTE_CACHE_LIMIT`] names and is cleared when full (many distinct names
//!   cannot grow it; a daemon has far fewer job files than that).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use offload_process::JobKind;

/// The most job names the cache holds; a full cache is cleared before the next insert.
pub(crate) const ROUTE_CACHE_LIMIT: usize = 4096;

/// A job name's route as resolved: its pool, its kind, its canonical file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CachedRoute {
    pub(crate) pool: String,
    pub(crate) kind: JobKind,
    pub(crate) path: PathBuf,
}

impl CachedRoute {
    /// Whether its file is still a regular file (one `statx`; the path is canonical).
    pub(crate) fn file_exists(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.is_file())
    }
}

/// Job name → route, bounded, cleared by the watcher.
pub(crate) struct RouteCache {
    enabled: AtomicBool,
    limit: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Bumped by every invalidation: a resolution stores its result only under the generation
    /// it started in.
    generation: u64,
    routes: HashMap<String, CachedRoute>,
}

impl RouteCache {
    /// An empty cache of at most `limit` names, off until [`enable`](Self::enable)d.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            enabled: AtomicBool::new(false),
            limit: limit.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Turns the cache on: the jobs folder is watched from now on.
    pub(crate) fn enable(&self) {
        self.enabled.store(true, Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The route of `job` if cached, and the generation to store a fresh resolution under.
    pub(crate) fn get(&self, job: &str) -> (Option<CachedRoute>, u64) {
        if !self.enabled.load(Ordering::Acquire) {
            return (None, 0);
        }
        let inner = self.lock();
        (inner.routes.get(job).cloned(), inner.generation)
    }

    /// Stores the route of `job` resolved during `generation`, unless the jobs folder changed
    /// since (or the cache is off). A full cache is cleared first.
    pub(crate) fn insert(&self, job: &str, generation: u64, route: CachedRoute) {
        if !self.enabled.load(Ordering::Acquire) {
            return;
        }
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.routes.len() >= self.limit && !inner.routes.contains_key(job) {
            inner.routes.clear();
        }
        inner.routes.insert(job.to_owned(), route);
    }

    /// Forgets `job` (its file is gone).
    pub(crate) fn remove(&self, job: &str) {
        self.lock().routes.remove(job);
    }

    /// Forgets every route: files of the jobs folder changed.
    pub(crate) fn invalidate(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.routes.clear();
    }

    /// How many names are cached.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().routes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(pool: &str) -> CachedRoute {
        CachedRoute {
            pool: pool.to_owned(),
            kind: JobKind::Node,
            path: PathBuf::from("/nonexistent/job.js"),
        }
    }

    #[test]
    fn stores_nothing_until_enabled() {
        let c = RouteCache::new(8);
        let (hit, generation) = c.get("a");
        assert_eq!(hit, None);
        c.insert("a", generation, route("p"));
        assert_eq!(c.len(), 0);
        c.enable();
        let (_, generation) = c.get("a");
        c.insert("a", generation, route("p"));
        assert_eq!(c.get("a").0, Some(route("p")));
    }

    #[test]
    fn never_holds_more_than_its_limit() {
        let c = RouteCache::new(8);
        c.enable();
        for i in 0..100 {
            let name = format!("job{i}");
            let (_, generation) = c.get(&name);
            c.insert(&name, generation, route("p"));
            assert!(c.len() <= 8, "{} names after {i}", c.len());
        }
        assert!(c.len() >= 1);
    }

    #[test]
    fn a_resolution_from_before_an_invalidation_is_not_stored() {
        let c = RouteCache::new(8);
        c.enable();
        let (_, before) = c.get("a");
        c.invalidate();
        c.insert("a", before, route("old"));
        assert_eq!(c.get("a").0, None);
        let (_, after) = c.get("a");
        c.insert("a", after, route("new"));
        assert_eq!(c.get("a").0, Some(route("new")));
        c.invalidate();
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn a_hit_whose_file_is_gone_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.js");
        std::fs::write(&path, "").unwrap();
        let r = CachedRoute {
            path: path.clone(),
            ..route("p")
        };
        assert!(r.file_exists());
        std::fs::remove_file(&path).unwrap();
        assert!(!r.file_exists());
    }
}
