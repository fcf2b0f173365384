//! Routing: a job name → its pool. The name is validated and resolved in the jobs folder; the
//! pool is the first `[[pool]]` whose patterns match, else `node` / `python` /
//! `native:<job>` by the job's file. The pool is started if it does not run yet.

use offload_process::{JobKind, ResolveError};

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
        self.ensure_pool(&pool, Some(resolved.kind)).await?;
        Ok(Route { pool })
    }
}
