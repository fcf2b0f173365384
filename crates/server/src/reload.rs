//! Hot reload: watches the jobs folder; when job files change, the pools that run them replace
//! their workers (each finishes its current job first; the SDKs call `unload()` on the way out).
//! New submits resolve job files again, so a removed file makes its job unknown (404): the
//! engine's route cache is on only while this watcher runs, and cleared by its events
//! (`engine/route_cache.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};

use crate::engine::Engine;

/// Keeps the OS watcher alive.
pub(crate) struct Watcher {
    _inner: RecommendedWatcher,
}

impl Watcher {
    pub(crate) fn start(dir: &Path, engine: Arc<Engine>) -> notify::Result<Self> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
        let mut inner = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                if matches!(
                    ev.kind,
                    notify::EventKind::Create(_)
                        | notify::EventKind::Modify(_)
                        | notify::EventKind::Remove(_)
                ) {
                    for p in ev.paths {
                        let _ = tx.send(p);
                    }
                }
            }
        })?;
        inner.watch(dir, RecursiveMode::Recursive)?;
        engine.routes.enable();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                // Routes are forgotten at the first event already, not after the debounce;
                // `files_changed` forgets them again for the events that follow.
                engine.routes.invalidate();
                // Debounce: an editor's save is several events.
                let mut paths = vec![first];
                tokio::time::sleep(Duration::from_millis(200)).await;
                while let Ok(p) = rx.try_recv() {
                    paths.push(p);
                }
                paths.sort();
                paths.dedup();
                tracing::info!(?paths, "job files changed");
                engine.files_changed(&paths).await;
            }
        });
        Ok(Self { _inner: inner })
    }
}
