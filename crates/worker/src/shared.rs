//! The state the worker's runtime and its watchdog thread share: the running jobs and calls,
//! and the shutdown flags (a leaf: `worker.rs`, `inbound.rs` and `watchdog.rs` use it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::context::Context;

/// Running jobs and calls; the flag says whether it counts toward the concurrency, `running`
/// how many do (kept, not counted per job: 64 in flight would cost 64 steps per start).
#[derive(Default)]
pub(crate) struct Jobs {
    map: HashMap<String, (Context, bool)>,
    pub(crate) running: usize,
}

impl std::ops::Deref for Jobs {
    type Target = HashMap<String, (Context, bool)>;

    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl Jobs {
    pub(crate) fn insert(&mut self, id: String, ctx: Context, counts: bool) {
        if let Some((_, old)) = self.map.insert(id, (ctx, counts)) {
            self.running -= usize::from(old);
        }
        self.running += usize::from(counts);
    }

    pub(crate) fn remove(&mut self, id: &str) {
        if let Some((_, counts)) = self.map.remove(id) {
            self.running -= usize::from(counts);
        }
    }
}

pub(crate) struct Shared {
    pub(crate) jobs: Mutex<Jobs>,
    pub(crate) drained: Notify,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) done: Notify,
    /// `serve` returned after a shutdown: the watchdog ends without ending the process.
    pub(crate) finished: AtomicBool,
    /// The supervisor sent the hard-kill notice.
    pub(crate) killed: AtomicBool,
    /// Bumped before and after each poll of a handler: odd while the runtime's thread is in
    /// one (the watchdog's sign that a handler holds it).
    pub(crate) polls: AtomicU64,
}

impl Shared {
    /// No job, nothing started or asked yet.
    pub(crate) fn new() -> Self {
        Self {
            jobs: Mutex::new(Jobs::default()),
            drained: Notify::new(),
            shutting_down: AtomicBool::new(false),
            done: Notify::new(),
            finished: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            polls: AtomicU64::new(0),
        }
    }

    pub(crate) fn jobs(&self) -> std::sync::MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) async fn wait_drained(&self) {
        loop {
            let notified = self.drained.notified();
            if self.jobs().is_empty() {
                return;
            }
            notified.await;
        }
    }
}
