//! Descriptors passed with runs (`docs/protocol.md` §9), held from their `NODE_HANDLE` frame
//! until the `run` that takes them (or its `cancel`). Bounded: past [`MAX_PENDING_FDS`] held
//! at once, a descriptor is refused (`NODE_HANDLE_NACK`) and closed.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::Mutex;

use offload_protocol::FdNotice;

/// The most descriptors held for runs that have not started.
pub const MAX_PENDING_FDS: usize = 64;

#[derive(Default)]
pub(crate) struct PendingFds {
    map: Mutex<HashMap<String, Vec<OwnedFd>>>,
}

impl PendingFds {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<OwnedFd>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `fd` for its run; `false` (refuse, the descriptor is closed) when none came with
    /// the frame, it is out of order, or too many are held.
    pub(crate) fn offer(&self, notice: &FdNotice, fd: Option<OwnedFd>) -> bool {
        let Some(fd) = fd else {
            return false;
        };
        let mut map = self.lock();
        let held: usize = map.values().map(Vec::len).sum();
        let have = map.get(&notice.id).map_or(0, Vec::len);
        if held >= MAX_PENDING_FDS || have != notice.index as usize || notice.index >= notice.of {
            return false;
        }
        map.entry(notice.id.clone()).or_default().push(fd);
        true
    }

    /// The `n` descriptors of run `id`.
    pub(crate) fn take(&self, id: &str, n: u32) -> Result<Vec<OwnedFd>, String> {
        let fds = self.lock().remove(id).unwrap_or_default();
        if fds.len() == n as usize {
            Ok(fds)
        } else {
            Err(format!(
                "the run says {n} descriptors, {} arrived for it",
                fds.len()
            ))
        }
    }

    /// A run that will not start (`cancel`): what it got is closed.
    pub(crate) fn forget(&self, id: &str) {
        self.lock().remove(id);
    }
}
