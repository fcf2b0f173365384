//! Descriptors waiting for the attempt that will pass them to a worker: a line-protocol TCP
//! connection offers its socket to its job (`docs/line-protocol.md`, "The client socket").
//!
//! The table is in memory and this node's only: the job's params carry a token
//! (`"client": "c<run>-17"`), the attempt that runs here takes the descriptor by that token and
//! offers it with its run (`RunOptions::offer_fds`). An attempt on another node, after a
//! restart or a retry finds nothing and runs as before. The offering request removes its entry
//! when it ends ([`Attached`] on drop), so nothing stays: bounded by the connections.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The params field that names an offered descriptor.
pub(crate) const CLIENT_FIELD: &str = "client";

#[derive(Debug)]
pub(crate) struct Attachments {
    map: Mutex<HashMap<String, OwnedFd>>,
    next: AtomicU64,
    /// Random per daemon run: a job recovered after a restart (or from another node) never
    /// names an entry of this run.
    run: u64,
}

impl Default for Attachments {
    fn default() -> Self {
        Self {
            map: Mutex::default(),
            next: AtomicU64::new(0),
            run: rand::random(),
        }
    }
}

impl Attachments {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, OwnedFd>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers `fd` under a fresh token; the entry lives as long as the returned guard.
    pub(crate) fn attach(self: &Arc<Self>, fd: OwnedFd) -> Attached {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let token = format!("c{:016x}-{n}", self.run);
        self.lock().insert(token.clone(), fd);
        Attached {
            table: Arc::clone(self),
            token,
        }
    }

    /// The descriptor offered under `token`, if it is still here (taken once).
    pub(crate) fn take(&self, token: &str) -> Option<OwnedFd> {
        self.lock().remove(token)
    }

    /// How many are waiting (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// An offered descriptor's entry: removed (and closed, if no attempt took it) on drop.
#[derive(Debug)]
pub(crate) struct Attached {
    table: Arc<Attachments>,
    token: String,
}

impl Attached {
    pub(crate) fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.table.take(&self.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_taken_once_and_gone_with_its_guard() {
        let table = Arc::new(Attachments::default());
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let guard = table.attach(a.into());
        let (c, _d) = std::os::unix::net::UnixStream::pair().unwrap();
        let other = table.attach(c.into());
        assert_ne!(guard.token(), other.token());
        assert!(table.take(guard.token()).is_some());
        assert!(table.take(guard.token()).is_none());
        assert_eq!(table.len(), 1);
        drop(other);
        drop(guard);
        assert_eq!(table.len(), 0);
    }
}
