//! The flusher: the thread that makes the writer's durable commits durable.
//!
//! The writer commits every group with `PRAGMA synchronous = NORMAL` (in WAL mode: appended to
//! the WAL, not flushed) and hands a group of durable calls here; this thread `fdatasync`s the
//! WAL file and only then answers them. Meanwhile the writer goes on committing the calls that
//! need no flush of their own (claims, lease renewals, progress), so they never wait behind a
//! flush; the next group of durable calls waits in the writer until this flush is done, and
//! grows meanwhile (one flush per group, as when the writer flushed itself).
//!
//! The WAL is one file written in order: one flush makes every commit before it durable. It is
//! opened here by its path (SQLite does not lock it: its locks are on the database and `-shm`
//! files) and opened again if it was replaced; the data folder is flushed too whenever it is
//! (re)opened, so that a WAL created since is found again after a crash. A flush that fails
//! fails every later one too: the kernel may have dropped the pages it could not write, and a
//! later flush that succeeds would not bring them back (the WAL would end at the hole after a
//! crash, losing the calls answered since); the daemon must be restarted.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use crate::StoreError;

/// A group of committed calls to answer once the WAL is flushed (the writer's requests).
pub(super) type Group<T> = Vec<T>;

/// The flusher thread. Dropping it lets it finish the groups sent, then waits for it.
pub(super) struct Flusher<T> {
    tx: Option<mpsc::Sender<Group<T>>>,
    thread: Option<JoinHandle<()>>,
    /// How many flushes it did (for tests and the curious).
    pub(super) flushes: Arc<AtomicU64>,
}

impl<T: Send + 'static> Flusher<T> {
    /// Starts the thread for the WAL at `wal`: each call of a group gets the flush's result
    /// through `answer`, then `done` runs.
    pub(super) fn spawn(
        wal: PathBuf,
        answer: impl Fn(T, Result<(), String>) + Send + 'static,
        done: impl Fn() + Send + 'static,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<Group<T>>();
        let flushes = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&flushes);
        let thread = std::thread::Builder::new()
            .name("offload-store-flush".into())
            .spawn(move || {
                let mut file = Wal::new(wal);
                while let Ok(group) = rx.recv() {
                    let flushed = file.flush();
                    counted.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = &flushed {
                        tracing::error!(error = %e, calls = group.len(), "cannot flush the store's WAL");
                    }
                    for request in group {
                        answer(request, flushed.clone());
                    }
                    done();
                }
            })
            .map_err(|e| StoreError::Engine(format!("cannot start the store's flusher: {e}")))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            flushes,
        })
    }

    /// Flushes, then answers, `group` (already committed). `Err` gives it back if the thread
    /// is gone.
    pub(super) fn send(&self, group: Group<T>) -> Result<(), Group<T>> {
        match &self.tx {
            Some(tx) => tx.send(group).map_err(|e| e.0),
            None => Err(group),
        }
    }
}

impl<T> Drop for Flusher<T> {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the store's flusher thread panicked");
            }
        }
    }
}

/// The WAL file, opened on first use and again if it was replaced.
struct Wal {
    path: PathBuf,
    file: Option<File>,
    /// The error of a flush that failed: every later flush fails with it.
    failed: Option<String>,
}

impl Wal {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: None,
            failed: None,
        }
    }

    fn flush(&mut self) -> Result<(), String> {
        if let Some(e) = &self.failed {
            return Err(format!("{e} (earlier: restart the daemon)"));
        }
        let flushed = self.try_flush();
        if let Err(e) = &flushed {
            self.failed = Some(e.clone());
        }
        flushed
    }

    fn try_flush(&mut self) -> Result<(), String> {
        let stale = match &self.file {
            // Unlinked (the WAL is deleted when the last connection closes, and may be created
            // again): flushing it would flush nothing that matters.
            Some(f) => f.metadata().map(|m| m.nlink() == 0).unwrap_or(true),
            None => true,
        };
        if stale {
            self.file = None;
            let file = File::open(&self.path)
                .map_err(|e| format!("cannot open {}: {e}", self.path.display()))?;
            // Its name in the folder must survive a crash too.
            sync_dir(&self.path)?;
            self.file = Some(file);
        }
        let file = self.file.as_ref().ok_or("no WAL file")?;
        file.sync_data()
            .map_err(|e| format!("cannot flush {}: {e}", self.path.display()))
    }
}

fn sync_dir(path: &Path) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("cannot flush the folder {}: {e}", dir.display()))
}
