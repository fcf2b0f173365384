//! The environment markers every worker carries, inherited by everything it starts:
//! [`SUPERVISOR_ENV`] names this supervisor process, [`WORKER_ENV`] one worker. The reaper
//! (`reaper.rs`), the cgroup layer (`cgroup.rs`, which names its parent after the token) and
//! the sweep (`contain.rs`) all read them; they depend on nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The supervisor marker's variable.
pub const SUPERVISOR_ENV: &str = "OFFLOAD_SUPERVISOR";
/// The worker marker's variable.
pub const WORKER_ENV: &str = "OFFLOAD_WORKER";

/// This supervisor process's token.
pub(crate) fn supervisor_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{}-{nanos:x}", std::process::id())
    })
}

/// A fresh worker marker value.
pub(crate) fn next_worker_marker() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "{}.{}",
        supervisor_token(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
