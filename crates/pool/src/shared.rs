//! [`Shared`]: what lives outside the pool's actor and survives it — the live worker
//! processes (for the registry, the supervisor after a panic, and `pids()`/`worker()`) and the
//! count of the actor's panics ([`PanicGuard`] counts them; it lives here, not beside the
//! supervisor, so the actor and its supervisor both depend on this file and not on each other).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use offload_process::{registry::Managed, JobProcess};

/// What the registry sees of a pool: its live processes.
#[derive(Debug)]
pub(crate) struct Shared {
    processes: Mutex<HashMap<u32, JobProcess>>,
    kill_signal: i32,
    kill_grace: Duration,
    /// Panics of the actor so far (`supervise.rs`).
    panics: AtomicU64,
}

impl Shared {
    pub(crate) fn new(kill_signal: i32, kill_grace: Duration) -> Self {
        Self {
            processes: Mutex::new(HashMap::new()),
            kill_signal,
            kill_grace,
            panics: AtomicU64::new(0),
        }
    }

    /// Counts a panic of the actor; returns the count.
    pub(crate) fn note_panic(&self) -> u64 {
        self.panics.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Panics of the actor so far.
    pub(crate) fn panics(&self) -> u64 {
        self.panics.load(Ordering::Acquire)
    }

    /// Forgets every process (after a panicked incarnation's workers are gone).
    pub(crate) fn clear(&self) {
        self.map().clear();
    }

    pub(crate) fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u32, JobProcess>> {
        self.processes.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn processes(&self) -> Vec<JobProcess> {
        self.map().values().cloned().collect()
    }
}

impl Managed for Shared {
    fn processes(&self) -> Vec<JobProcess> {
        Shared::processes(self)
    }

    fn kill_policy(&self) -> (i32, Duration) {
        (self.kill_signal, self.kill_grace)
    }
}

/// Counts a panic of the actor when it is dropped during unwinding. It must be the actor's
/// first field: fields drop in order, so the count is visible before any reply is dropped.
pub(crate) struct PanicGuard(Arc<Shared>);

impl PanicGuard {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self(shared)
    }
}

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.note_panic();
        }
    }
}
