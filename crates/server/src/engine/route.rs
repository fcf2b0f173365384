//! Routing: a job name → its pool. The name is validated and resolved in the jobs folder; the
//! pool is the first `[[pool]]` whose patterns match, else `node` / `python` /
//! `native:<job>` by the job's file. The pool is started if it does not run yet. Routes that
//! succeeded are kept in the engine's [`RouteCache`](super::route_cache::RouteCache) (see there
//! what keeps it true to the jobs folder).

use offload_process::{JobKind, ResolveError};

use super::route_cache::CachedRoute;
use super::{Engine, EngineError};
use crate::config::pattern_matches;

/// A job name routed: its pool.
pub(crate) struct Route {
    pub(crate) pool: String,
}

impl Engine {
    /// Routes a job name: validates and resolves it, picks its pool, and makes sure that pool
    /// runs.
    ///
    /// # Errors
    ///
    /// [`EngineError::UnknownJob`] when no job file has that name; [`EngineError::Invalid`] for
    /// a bad name, a job whose kind does not fit its declared pool, or a pool that cannot be
    /// configured; [`EngineError::Internal`] for a pool that cannot start.
    pub(crate) async fn route(&self, job: &str) -> Result<Route, EngineError> {
        let (cached, generation) = self.routes.get(job);
        let cached = match cached {
            Some(hit) if hit.file_exists() => hit,
            hit => {
                if hit.is_some() {
                    // Removed or renamed before the watcher said so: resolve as if uncached.
                    self.routes.remove(job);
                }
                let fresh = self.resolve_route(job)?;
                self.routes.insert(job, generation, fresh.clone());
                fresh
            }
        };
        self.ensure_pool(&cached.pool, Some(cached.kind)).await?;
        Ok(Route { pool: cached.pool })
    }

    /// Resolves a job name in the jobs folder and decides its pool (no cache, no pool start).
    fn resolve_route(&self, job: &str) -> Result<CachedRoute, EngineError> {
        let resolved = self.jobs_dir.resolve(job).map_err(|e| match e {
            // Texts name paths relative to the jobs folder only (never absolute, never a
            // symlink's target): they go to clients.
            ResolveError::NotFound { .. } => EngineError::UnknownJob(format!(
                "{e}; add the job file to the jobs folder of this daemon"
            )),
            other => EngineError::Invalid(other.to_string()),
        })?;
        let declared = self
            .cfg
            .pools
            .iter()
            .find(|p| p.jobs.iter().any(|pat| pattern_matches(pat, job)));
        if let Some(p) = declared {
            let wanted = match p.kind.as_deref() {
                Some("node") => Some(JobKind::Node),
                Some("python") => Some(JobKind::Python),
                Some("native") => Some(JobKind::Native),
                _ => None,
            };
            if wanted.is_some_and(|k| k != resolved.kind) {
                return Err(EngineError::Invalid(format!(
                    "job {job:?} is a {:?} job, but pool {:?} runs {} workers: fix its \
                     `jobs` patterns in offload.toml",
                    resolved.kind,
                    p.name,
                    p.kind.as_deref().unwrap_or("?")
                )));
            }
        }
        let pool = match declared {
            Some(p) => p.name.clone(),
            None => match resolved.kind {
                JobKind::Node => "node".to_owned(),
                JobKind::Python => "python".to_owned(),
                _ => format!("native:{}", resolved.name),
            },
        };
        Ok(CachedRoute {
            pool,
            kind: resolved.kind,
            path: resolved.path,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use offload_store::SqliteStore;

    use super::super::route_cache::ROUTE_CACHE_LIMIT;
    use super::*;
    use crate::config::ServeConfig;
    use crate::metrics::Metrics;

    async fn engine(jobs: &std::path::Path) -> Arc<Engine> {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let cfg = ServeConfig::new(jobs, jobs.join("data"));
        let engine = Engine::start(store, cfg, Metrics::new()).await.unwrap();
        // As the hot-reload watcher does once the folder is watched.
        engine.routes.enable();
        engine
    }

    #[tokio::test]
    async fn unknown_names_are_never_cached() {
        let tmp = tempfile::tempdir().unwrap();
        let e = engine(tmp.path()).await;
        for i in 0..ROUTE_CACHE_LIMIT + 100 {
            let err = e.route(&format!("nope{i}")).await.err().unwrap();
            assert!(matches!(err, EngineError::UnknownJob(_)), "{err}");
        }
        assert_eq!(e.routes.len(), 0);
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_limit_under_many_job_names() {
        let tmp = tempfile::tempdir().unwrap();
        let n = ROUTE_CACHE_LIMIT + 100;
        for i in 0..n {
            std::fs::write(tmp.path().join(format!("job{i}.js")), "").unwrap();
        }
        let e = engine(tmp.path()).await;
        for i in 0..n {
            let route = e.route(&format!("job{i}")).await.unwrap();
            assert_eq!(route.pool, "node");
            assert!(e.routes.len() <= ROUTE_CACHE_LIMIT);
        }
        // Still answered from the cache after it was cleared once.
        assert!(e.routes.len() >= 1);
        e.files_changed(&[]).await;
        assert_eq!(e.routes.len(), 0);
    }
}
