//! Which program runs a job of each kind, and where the Node and Python SDKs are.
//!
//! The SDKs are embedded in the binary at build time. At run time they are found, in order:
//! 1. `OFFLOAD_SDK_DIR` (a folder holding `node/` and `python/`);
//! 2. the source tree the binary was built from, when it still exists (development);
//! 3. the embedded copy, written once to `$XDG_CACHE_HOME/offload/sdk-<hash>` (or
//!    `~/.cache/...`, or the temp dir) and reused.

use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::resolve::JobKind;
use crate::spawn::WorkerCommand;

include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));

/// How to start each kind of worker.
#[derive(Debug, Clone)]
pub struct Runtimes {
    /// The Node executable (default `node`, or `OFFLOAD_NODE`).
    pub node: PathBuf,
    /// The Python executable (default `python3`, or `OFFLOAD_PYTHON`).
    pub python: PathBuf,
    /// Overrides the SDK folder.
    pub sdk_dir: Option<PathBuf>,
}

impl Default for Runtimes {
    fn default() -> Self {
        let var = |k: &str, d: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from(d), PathBuf::from)
        };
        Self {
            node: var("OFFLOAD_NODE", "node"),
            python: var("OFFLOAD_PYTHON", "python3"),
            sdk_dir: std::env::var_os("OFFLOAD_SDK_DIR").map(PathBuf::from),
        }
    }
}

impl Runtimes {
    /// The command that starts a protocol worker for a job of `kind` at `path`.
    ///
    /// # Errors
    ///
    /// When the embedded SDK cannot be written out.
    pub fn command(&self, kind: JobKind, path: &Path) -> io::Result<WorkerCommand> {
        Ok(match kind {
            JobKind::Node => WorkerCommand::new(&self.node)
                .arg(self.sdk_dir()?.join("node/runner.js"))
                .node_channel(true),
            JobKind::Python => WorkerCommand::new(&self.python)
                .args(["-m", "offload_worker"])
                .env("PYTHONPATH", self.sdk_dir()?.join("python"))
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .env("PYTHONUNBUFFERED", "1"),
            JobKind::Native => WorkerCommand::new(path),
        })
    }

    /// The folder holding `node/` and `python/`.
    ///
    /// # Errors
    ///
    /// When the embedded SDK cannot be written out.
    pub fn sdk_dir(&self) -> io::Result<PathBuf> {
        if let Some(dir) = &self.sdk_dir {
            return Ok(dir.clone());
        }
        let built = Path::new(BUILD_SDK_DIR);
        if built.join("node/runner.js").is_file() && built.join("python/offload_worker").is_dir() {
            return Ok(built.to_path_buf());
        }
        embedded_sdk_dir()
    }
}

fn embedded_sdk_dir() -> io::Result<PathBuf> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    if let Some(d) = DIR.get() {
        return Ok(d.clone());
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    SDK_FILES.hash(&mut hasher);
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("offload");
    let dir = base.join(format!("sdk-{:016x}", hasher.finish()));
    if !dir.join("node/runner.js").is_file() {
        std::fs::create_dir_all(&base)?;
        let tmp = base.join(format!(".sdk-tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        for (rel, bytes) in SDK_FILES {
            let target = tmp.join(rel);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&target, bytes)?;
        }
        // Another process may have won the race; either copy is identical.
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    Ok(DIR.get_or_init(|| dir).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdks_are_embedded() {
        let names: Vec<&str> = SDK_FILES.iter().map(|(n, _)| *n).collect();
        assert!(names.contains(&"node/runner.js"), "{names:?}");
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("python/offload_worker/")),
            "{names:?}"
        );
        assert!(!names
            .iter()
            .any(|n| n.contains("/test/") || n.contains("/tests/")));
    }
}
