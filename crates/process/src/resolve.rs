//! Job resolution: a job name → a file inside the jobs folder, and which runtime runs it.
//!
//! # Rules
//!
//! - A name is `/`-separated, relative to the jobs folder: `resize`, `images/resize`. A name may
//!   carry its extension (`resize.js`).
//! - Refused, with [`ResolveError::InvalidName`]: an empty name, an absolute path, `.` or `..`
//!   components, empty components (`a//b`), backslashes, NUL and other control characters,
//!   names over 1,024 bytes, and any component that starts with `.` (`.hidden/tool`,
//!   `.git/hooks/x`) or is `node_modules` (`node_modules/.bin/x`): hidden files and installed
//!   dependencies are never jobs.
//! - Candidates, in this order: `<name>.js`, `<name>.mjs`, `<name>.cjs` (Node), `<name>.py`
//!   (Python), `<name>` itself when it is an executable file (native) or carries one of those
//!   extensions. More than one match is [`ResolveError::Ambiguous`]: rename one.
//! - The match is canonicalized and must still lie inside the (canonical) jobs folder, so a
//!   symlink pointing outside is refused with [`ResolveError::OutsideJobsDir`].
//! - Absolute paths are accepted only through [`JobsDir::resolve_path`], an explicit call.
//! - Error texts (`Display`) name files relative to the jobs folder and never show where a
//!   symlink leads, so they can be sent to clients; the fields keep the full paths for logs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

/// Which runtime runs a job file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobKind {
    /// `.js`, `.mjs`, `.cjs`: the Node runner.
    Node,
    /// `.py`: the Python runner.
    Python,
    /// An executable file: runs as it is (Rust SDK workers, or any program).
    Native,
}

/// A job resolved to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedJob {
    /// The name, without extension, as the worker receives it in `run.job`.
    pub name: String,
    /// The canonical absolute file.
    pub path: PathBuf,
    /// The runtime.
    pub kind: JobKind,
}

/// Why a job name did not resolve.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolveError {
    /// The name breaks the rules (see the module docs).
    #[error("invalid job name {name:?}: {reason}")]
    InvalidName {
        /// The name (control characters escaped by `Debug`).
        name: String,
        /// Which rule.
        reason: &'static str,
    },
    /// No file matches.
    #[error(
        "no job {name:?} in the jobs folder (looked for .js, .mjs, .cjs, .py and an executable)"
    )]
    NotFound {
        /// The name.
        name: String,
        /// The jobs folder.
        dir: String,
    },
    /// Several files match.
    #[error("job {name:?} is ambiguous: {candidates:?}; rename all but one")]
    Ambiguous {
        /// The name.
        name: String,
        /// The matching files, relative to the jobs folder.
        candidates: Vec<String>,
    },
    /// The file lies outside the jobs folder (through a symlink).
    #[error("job {name:?} resolves outside the jobs folder (through a symlink)")]
    OutsideJobsDir {
        /// The name.
        name: String,
        /// Where it led.
        path: String,
        /// The jobs folder.
        dir: String,
    },
    /// The jobs folder itself is missing or unreadable.
    #[error("the jobs folder is not usable: {reason}")]
    JobsDir {
        /// The folder.
        dir: String,
        /// The OS error.
        reason: String,
    },
    /// A path is not a usable job file (relative to the jobs folder, unless it was given as an
    /// explicit absolute path).
    #[error("{path} is not a job file: {reason}")]
    BadPath {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
}

const MAX_NAME_LEN: usize = 1024;
const EXTENSIONS: [(&str, JobKind); 4] = [
    ("js", JobKind::Node),
    ("mjs", JobKind::Node),
    ("cjs", JobKind::Node),
    ("py", JobKind::Python),
];

/// A jobs folder.
#[derive(Debug, Clone)]
pub struct JobsDir {
    dir: PathBuf,
}

impl JobsDir {
    /// The folder `dir` (it is canonicalized on each resolution, so it may appear later).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The folder as given.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The canonical folder.
    ///
    /// # Errors
    ///
    /// [`ResolveError::JobsDir`] when it does not exist.
    pub fn canonical(&self) -> Result<PathBuf, ResolveError> {
        self.dir.canonicalize().map_err(|e| ResolveError::JobsDir {
            dir: self.dir.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Resolves a job name (see the module docs).
    ///
    /// # Errors
    ///
    /// A [`ResolveError`] naming the rule that refused it.
    pub fn resolve(&self, name: &str) -> Result<ResolvedJob, ResolveError> {
        self.resolve_filtered(name, None)
    }

    /// Resolves a job name among the files of one runtime only (a Node pool ignores `.py`
    /// files, so `echo.js` beside `echo.py` is not ambiguous there).
    ///
    /// # Errors
    ///
    /// As [`resolve`](Self::resolve).
    pub fn resolve_kind(&self, name: &str, kind: JobKind) -> Result<ResolvedJob, ResolveError> {
        self.resolve_filtered(name, Some(kind))
    }

    fn resolve_filtered(
        &self,
        name: &str,
        only: Option<JobKind>,
    ) -> Result<ResolvedJob, ResolveError> {
        check_name(name)?;
        let root = self.canonical()?;
        let base = root.join(name);
        let mut found: Vec<(PathBuf, JobKind)> = Vec::new();
        for (ext, kind) in EXTENSIONS {
            let candidate = PathBuf::from(format!("{}.{ext}", base.display()));
            if candidate.is_file() {
                found.push((candidate, kind));
            }
        }
        if base.is_file() {
            if let Some(kind) = kind_by_extension(&base) {
                found.push((base.clone(), kind));
            } else if is_executable(&base) {
                found.push((base.clone(), JobKind::Native));
            }
        }
        if let Some(only) = only {
            found.retain(|(_, kind)| *kind == only);
        }
        let (path, kind) = match found.len() {
            0 => {
                return Err(ResolveError::NotFound {
                    name: name.to_owned(),
                    dir: root.display().to_string(),
                })
            }
            1 => found.remove(0),
            _ => {
                return Err(ResolveError::Ambiguous {
                    name: name.to_owned(),
                    candidates: found.iter().map(|(p, _)| relative(&root, p)).collect(),
                })
            }
        };
        let canonical = path.canonicalize().map_err(|e| ResolveError::BadPath {
            path: relative(&root, &path),
            reason: e.kind().to_string(),
        })?;
        if !canonical.starts_with(&root) {
            return Err(ResolveError::OutsideJobsDir {
                name: name.to_owned(),
                path: canonical.display().to_string(),
                dir: root.display().to_string(),
            });
        }
        Ok(ResolvedJob {
            name: strip_extension(name).to_owned(),
            path: canonical,
            kind,
        })
    }

    /// Resolves an explicit absolute path, anywhere (the caller vouches for it).
    ///
    /// # Errors
    ///
    /// [`ResolveError::BadPath`] when it is not absolute, not a file, or of no known kind.
    pub fn resolve_path(path: &Path) -> Result<ResolvedJob, ResolveError> {
        let bad = |reason: &str| ResolveError::BadPath {
            path: path.display().to_string(),
            reason: reason.to_owned(),
        };
        if !path.is_absolute() {
            return Err(bad("not an absolute path"));
        }
        let canonical = path.canonicalize().map_err(|e| bad(&e.to_string()))?;
        if !canonical.is_file() {
            return Err(bad("not a file"));
        }
        let kind = kind_by_extension(&canonical)
            .or_else(|| is_executable(&canonical).then_some(JobKind::Native))
            .ok_or_else(|| bad("neither .js/.mjs/.cjs/.py nor executable"))?;
        let name = canonical
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| strip_extension(n).to_owned())
            .ok_or_else(|| bad("file name is not utf-8"))?;
        Ok(ResolvedJob {
            name,
            path: canonical,
            kind,
        })
    }
}

/// Checks a job name against the rules of the module docs, without touching the disk.
///
/// # Errors
///
/// [`ResolveError::InvalidName`] naming the rule.
pub fn check_name(name: &str) -> Result<(), ResolveError> {
    let invalid = |reason| {
        Err(ResolveError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return invalid("longer than 1024 bytes");
    }
    if name.chars().any(char::is_control) {
        return invalid("contains a control character");
    }
    if name.contains('\\') {
        return invalid("contains a backslash");
    }
    if name.starts_with('/') || Path::new(name).is_absolute() {
        return invalid("absolute paths are not job names (use an explicit path API)");
    }
    for part in name.split('/') {
        if part.is_empty() {
            return invalid("empty path component");
        }
        if part == "." || part == ".." {
            return invalid("'.' and '..' components are not allowed");
        }
        if part.starts_with('.') {
            return invalid("a component starts with '.' (hidden files are not jobs)");
        }
        if part == "node_modules" {
            return invalid("a component is node_modules (dependencies are not jobs)");
        }
    }
    if Path::new(name)
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return invalid("not a plain relative path");
    }
    Ok(())
}

/// `path` relative to the jobs folder `root`, for error texts.
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).map_or_else(
        |_| String::from("<outside the jobs folder>"),
        |p| p.display().to_string(),
    )
}

fn kind_by_extension(path: &Path) -> Option<JobKind> {
    let ext = path.extension()?.to_str()?;
    EXTENSIONS
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, kind)| *kind)
}

fn strip_extension(name: &str) -> &str {
    for (ext, _) in EXTENSIONS {
        if let Some(stem) = name.strip_suffix(ext).and_then(|s| s.strip_suffix('.')) {
            return stem;
        }
    }
    name
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn folder() -> (tempfile::TempDir, JobsDir) {
        let tmp = tempfile::tempdir().unwrap();
        let jobs = tmp.path().join("jobs");
        fs::create_dir_all(jobs.join("images")).unwrap();
        fs::write(jobs.join("hello.js"), "module.exports = () => 1").unwrap();
        fs::write(jobs.join("images/resize.py"), "def handle(p, c): pass").unwrap();
        fs::write(jobs.join("native"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(jobs.join("native"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(jobs.join("notes.txt"), "not a job").unwrap();
        fs::write(tmp.path().join("secret.js"), "outside").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret.js"), jobs.join("escape.js")).unwrap();
        std::os::unix::fs::symlink(jobs.join("hello.js"), jobs.join("alias.js")).unwrap();
        let dir = JobsDir::new(&jobs);
        (tmp, dir)
    }

    #[test]
    fn resolves_each_kind() {
        let (_tmp, dir) = folder();
        let r = dir.resolve("hello").unwrap();
        assert_eq!((r.name.as_str(), r.kind), ("hello", JobKind::Node));
        let r = dir.resolve("images/resize").unwrap();
        assert_eq!(
            (r.name.as_str(), r.kind),
            ("images/resize", JobKind::Python)
        );
        let r = dir.resolve("native").unwrap();
        assert_eq!(r.kind, JobKind::Native);
        let r = dir.resolve("hello.js").unwrap();
        assert_eq!(r.name, "hello");
        // A symlink inside the folder, to a file inside it, is fine.
        assert_eq!(dir.resolve("alias").unwrap().kind, JobKind::Node);
    }

    #[test]
    fn every_path_trick_is_refused() {
        let (_tmp, dir) = folder();
        for name in [
            "",
            "..",
            "../secret",
            "images/../../secret",
            "./hello",
            "/etc/passwd",
            "images//resize",
            "hello\0",
            "hel\nlo",
            "a\\..\\b",
            "images/",
            ".hidden/tool",
            ".tool",
            "node_modules/.bin/x",
            "node_modules/pkg/index",
            ".git/hooks/y",
            "images/.secret",
        ] {
            assert!(
                matches!(dir.resolve(name), Err(ResolveError::InvalidName { .. })),
                "{name:?} was not refused as invalid: {:?}",
                dir.resolve(name)
            );
        }
        assert!(matches!(
            dir.resolve("escape"),
            Err(ResolveError::OutsideJobsDir { .. })
        ));
        assert!(matches!(
            dir.resolve("notes.txt"),
            Err(ResolveError::NotFound { .. })
        ));
        assert!(matches!(
            dir.resolve("missing"),
            Err(ResolveError::NotFound { .. })
        ));
        let long = "a".repeat(2000);
        assert!(matches!(
            dir.resolve(&long),
            Err(ResolveError::InvalidName { .. })
        ));
    }

    #[test]
    fn hidden_and_dependency_files_are_never_jobs() {
        let (tmp, dir) = folder();
        let jobs = tmp.path().join("jobs");
        for f in [".hidden/tool", "node_modules/.bin/x", ".git/hooks/y"] {
            let p = jobs.join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, "#!/bin/sh\necho pwned\n").unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
            let err = dir.resolve(f).unwrap_err();
            assert!(
                matches!(err, ResolveError::InvalidName { .. }),
                "{f}: {err}"
            );
        }
    }

    #[test]
    fn error_texts_hold_no_absolute_path_nor_symlink_target() {
        let (tmp, dir) = folder();
        fs::write(tmp.path().join("jobs/hello.py"), "").unwrap();
        let root = tmp.path().display().to_string();
        for name in ["escape", "missing", "hello", "../x"] {
            let text = dir.resolve(name).unwrap_err().to_string();
            assert!(!text.contains(&root), "{name}: {text}");
            assert!(!text.contains("secret"), "{name}: {text}");
        }
        let text = dir.resolve("hello").unwrap_err().to_string();
        assert!(
            text.contains("hello.js") && text.contains("hello.py"),
            "{text}"
        );
        let text = JobsDir::new(tmp.path().join("nope"))
            .resolve("x")
            .unwrap_err();
        assert!(!text.to_string().contains(&root), "{text}");
    }

    #[test]
    fn two_runtimes_for_one_name_is_ambiguous() {
        let (tmp, dir) = folder();
        fs::write(tmp.path().join("jobs/hello.py"), "").unwrap();
        assert!(matches!(
            dir.resolve("hello"),
            Err(ResolveError::Ambiguous { .. })
        ));
    }

    #[test]
    fn explicit_paths_must_be_absolute() {
        let (tmp, _dir) = folder();
        let abs = tmp.path().join("secret.js");
        assert_eq!(JobsDir::resolve_path(&abs).unwrap().kind, JobKind::Node);
        assert!(JobsDir::resolve_path(Path::new("secret.js")).is_err());
    }

    #[test]
    fn a_missing_jobs_folder_is_its_own_error() {
        let dir = JobsDir::new("/nonexistent/jobs");
        assert!(matches!(
            dir.resolve("x"),
            Err(ResolveError::JobsDir { .. })
        ));
    }
}
