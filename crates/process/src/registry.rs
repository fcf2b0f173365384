//! The registry: every process manager (ChildJob, ChildPool) registers itself, so that one call
//! ends every child of the application.
//!
//! - [`kill_all`] sends SIGKILL to every registered process group at once (synchronous; safe in
//!   a panic hook or an exit path).
//! - [`shutdown_all`] kills them gracefully: the managers' kill signal, a grace period, then
//!   SIGKILL, all managers in parallel.
//! - **On SIGINT/SIGTERM** of the host process: managers created with `handle_signals` (the
//!   default) install one listener that runs [`shutdown_all`] with a 2 s grace, then exits the
//!   process with status 130 (SIGINT) or 143 (SIGTERM).
//! - **When the last handle of a manager drops**, it SIGKILLs its processes (a destructor cannot
//!   wait for a grace period).
//! - **When the process dies in any other way** (SIGKILL, abort, `exit` without destructors),
//!   the children die with it through `PR_SET_PDEATHSIG`, and the lifeline reaper kills their
//!   descendants (see `reaper.rs`).

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::process::JobProcess;

/// What the registry needs of a process manager.
pub trait Managed: Send + Sync {
    /// Its live processes.
    fn processes(&self) -> Vec<JobProcess>;
    /// Its kill signal and grace period for a graceful shutdown.
    fn kill_policy(&self) -> (i32, Duration);
}

type Entry = (u64, Weak<dyn Managed>);

fn entries() -> &'static Mutex<Vec<Entry>> {
    static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
    &REGISTRY
}

/// Registers a manager; keep the id to [`unregister`] it.
pub fn register(manager: Weak<dyn Managed>) -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut list = entries().lock().unwrap_or_else(|e| e.into_inner());
    list.retain(|(_, w)| w.strong_count() > 0);
    list.push((id, manager));
    id
}

/// Removes a manager.
pub fn unregister(id: u64) {
    entries()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(i, _)| *i != id);
}

fn live() -> Vec<Arc<dyn Managed>> {
    entries()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(|(_, w)| w.upgrade())
        .collect()
}

/// Every live process of every registered manager.
pub fn all_pids() -> Vec<u32> {
    live()
        .iter()
        .flat_map(|m| m.processes())
        .filter(JobProcess::is_running)
        .map(|p| p.pid())
        .collect()
}

/// SIGKILLs every registered process group now. Returns how many groups were signalled.
pub fn kill_all() -> usize {
    let pids = all_pids();
    for &pid in &pids {
        let _ = crate::spawn::signal_group(pid, libc::SIGKILL);
    }
    pids.len()
}

/// Gracefully kills every registered process: each manager's signal, its grace, then SIGKILL.
/// Resolves when all are gone.
pub async fn shutdown_all() {
    let mut started = Vec::new();
    for m in live() {
        let (signal, grace) = m.kill_policy();
        for p in m.processes() {
            p.start_kill_with(signal, grace);
            started.push(p);
        }
    }
    for p in started {
        p.exited().await;
    }
}

static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The signal (SIGINT or SIGTERM) the registry's listener received, if any. The listener
/// kills every child, then exits with 130 or 143; but a `main` whose jobs end because of that
/// kill may return first: it should exit with `128 + signal` when this is `Some`.
pub fn received_signal() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Installs the SIGINT/SIGTERM listener once (inside a tokio runtime; a no-op outside one).
/// Managers created with `handle_signals` call it.
///
/// The handlers are registered before it returns, not by the task it spawns: a signal that
/// came before that task first ran took the default action, which killed the host without the
/// graceful shutdown (its children then ended only by their parent-death signal).
pub fn install_signal_handlers() {
    use tokio::signal::unix::{signal, SignalKind};
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    rt.spawn(async move {
        let code = tokio::select! {
            _ = int.recv() => 130,
            _ = term.recv() => 143,
        };
        RECEIVED.store(code - 128, Ordering::SeqCst);
        tracing::info!("signal received: stopping every child process");
        let _ = tokio::time::timeout(Duration::from_secs(5), shutdown_all()).await;
        kill_all();
        std::process::exit(code);
    });
}
