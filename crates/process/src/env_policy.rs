//! Which of the supervisor's environment variables a worker inherits.
//!
//! [`EnvPolicy::Inherit`] (the library's default) passes the whole environment, as
//! `std::process::Command` does. [`EnvPolicy::AllowList`] starts the worker from an empty
//! environment and copies only the variables an [`EnvAllowList`] lets through; `offload serve`
//! always uses it, so its own secrets (the API token, the store URL) never reach a job.
//!
//! Under either policy, what offload sets itself (the channel variables, `OFFLOAD_JOBS_DIR`, the
//! supervisor and worker markers, the runtime's `PYTHONPATH`, …) and the variables given
//! explicitly with `WorkerCommand::env` / `ExecOptions::env` / a pool's `env` are always set:
//! the policy filters only what is *inherited*.
//!
//! An [`EnvAllowList`] decides, for each inherited variable, in this order:
//! 1. a name matching a *deny* pattern is dropped (by default `OFFLOAD_*`: `OFFLOAD_TOKEN`,
//!    `OFFLOAD_STORE`, …);
//! 2. a value holding a *secret value* is dropped (a secret of 6 bytes or more anywhere in the
//!    value, e.g. a token inside a URL; a shorter one only as the whole value);
//! 3. a name matching an *allow* pattern is kept ([`DEFAULT_ALLOW`] by default);
//! 4. anything else is dropped.
//!
//! Patterns are exact names or a prefix ending in `*` (`LC_*`).
//!
//! ```
//! use offload_process::{EnvAllowList, EnvPolicy};
//! let policy = EnvPolicy::AllowList(
//!     EnvAllowList::new().allow("AWS_REGION").secret_value("s3cr3t-token"),
//! );
//! # let _ = policy;
//! ```

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// The variables an [`EnvAllowList::new`] lets through: the basics every program expects, and
/// what the Node and Python runtimes read (`NODE_OPTIONS`, `NODE_PATH`, `PYTHONHOME`, …).
pub const DEFAULT_ALLOW: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
    "NODE_*",
    "PYTHON*",
    "VIRTUAL_ENV",
    "RUST_LOG",
    "RUST_BACKTRACE",
];

/// The names an [`EnvAllowList::new`] never lets through (offload's own settings).
pub const DEFAULT_DENY: &[&str] = &["OFFLOAD_*"];

/// Secret values shorter than this are matched as whole values only.
const MIN_SECRET_SUBSTRING: usize = 6;

/// A variable given explicitly (`ExecOptions::env`, `WorkerCommand::env`'s callers, a pool's
/// `env`) that cannot be set as written: an empty name, a name holding `=` (`"A=B"` would set
/// `A` to `B=…`) or NUL, or a value holding NUL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name:?}: {why}")]
#[non_exhaustive]
pub struct EnvVarError {
    /// The name as given.
    pub name: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Whether `name=value` can be set in a worker's environment as written.
///
/// # Errors
///
/// [`EnvVarError`] naming the variable and what is wrong with it.
pub fn check_env_var(name: &str, value: &str) -> Result<(), EnvVarError> {
    let why = if name.is_empty() {
        "the name is empty"
    } else if name.contains('=') {
        "the name holds '=' (it would set another variable)"
    } else if name.contains('\0') {
        "the name holds a NUL byte"
    } else if value.contains('\0') {
        "the value holds a NUL byte"
    } else {
        return Ok(());
    };
    Err(EnvVarError {
        name: name.to_owned(),
        why,
    })
}

/// How a worker's environment is built from the supervisor's: everything ([`Inherit`], the
/// library's default), or only what an [`EnvAllowList`] lets through (`offload serve`'s policy).
/// Either way, what offload sets itself and the variables given explicitly
/// (`WorkerCommand::env`, `ExecOptions::env`, a pool's `env`) are always set.
///
/// [`Inherit`]: EnvPolicy::Inherit
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvPolicy {
    /// The whole environment (the default of the library).
    #[default]
    Inherit,
    /// Only what the list lets through (the daemon's policy).
    AllowList(EnvAllowList),
}

impl EnvPolicy {
    /// The inherited variables under this policy, from `vars` (the supervisor's environment);
    /// `None` means "inherit everything" (nothing to clear).
    pub fn filter(
        &self,
        vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Option<Vec<(OsString, OsString)>> {
        match self {
            Self::Inherit => None,
            Self::AllowList(list) => Some(
                vars.into_iter()
                    .filter(|(k, v)| list.admits(k, v))
                    .collect(),
            ),
        }
    }
}

/// An allow-list of inherited variables (see [`EnvPolicy`]). For each inherited variable, in
/// this order:
/// 1. a name matching a *deny* pattern is dropped (by default `OFFLOAD_*`);
/// 2. a value holding a *secret value* is dropped (a secret of 6 bytes or more anywhere in the
///    value, a shorter one only as the whole value);
/// 3. a name matching an *allow* pattern is kept ([`DEFAULT_ALLOW`] by default);
/// 4. anything else is dropped.
///
/// Patterns are exact names or a prefix ending in `*` (`LC_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvAllowList {
    allow: Vec<String>,
    deny: Vec<String>,
    secrets: Vec<Vec<u8>>,
}

impl Default for EnvAllowList {
    fn default() -> Self {
        Self::new()
    }
}

impl EnvAllowList {
    /// [`DEFAULT_ALLOW`], denying [`DEFAULT_DENY`], no secret values.
    pub fn new() -> Self {
        Self {
            allow: DEFAULT_ALLOW.iter().map(|s| (*s).to_owned()).collect(),
            deny: DEFAULT_DENY.iter().map(|s| (*s).to_owned()).collect(),
            secrets: Vec::new(),
        }
    }

    /// An empty list: nothing is inherited (only what offload and the caller set).
    pub fn empty() -> Self {
        Self {
            allow: Vec::new(),
            deny: DEFAULT_DENY.iter().map(|s| (*s).to_owned()).collect(),
            secrets: Vec::new(),
        }
    }

    /// Also lets `pattern` through (a name, or a prefix ending in `*`).
    #[must_use]
    pub fn allow(mut self, pattern: impl Into<String>) -> Self {
        self.allow.push(pattern.into());
        self
    }

    /// Never lets `pattern` through, even when allowed.
    #[must_use]
    pub fn deny(mut self, pattern: impl Into<String>) -> Self {
        self.deny.push(pattern.into());
        self
    }

    /// Drops any variable whose value holds `value` (empty values are ignored).
    #[must_use]
    pub fn secret_value(mut self, value: impl AsRef<OsStr>) -> Self {
        let v = value.as_ref().as_bytes();
        if !v.is_empty() {
            self.secrets.push(v.to_vec());
        }
        self
    }

    /// Whether the variable `name=value` is inherited.
    pub fn admits(&self, name: &OsStr, value: &OsStr) -> bool {
        let Some(name) = name.to_str() else {
            return false;
        };
        if self.deny.iter().any(|p| matches(p, name)) {
            return false;
        }
        let value = value.as_bytes();
        if self.secrets.iter().any(|s| holds(value, s)) {
            return false;
        }
        self.allow.iter().any(|p| matches(p, name))
    }
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn holds(value: &[u8], secret: &[u8]) -> bool {
    if secret.len() < MIN_SECRET_SUBSTRING {
        return value == secret;
    }
    value.windows(secret.len()).any(|w| w == secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        list.iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn inherit_passes_everything() {
        assert_eq!(EnvPolicy::Inherit.filter(vars(&[("A", "1")])), None);
    }

    #[test]
    fn the_allow_list_keeps_the_basics_and_drops_secrets() {
        let policy = EnvPolicy::AllowList(
            EnvAllowList::new()
                .allow("MYAPP_*")
                .deny("PYTHONSTARTUP")
                .secret_value("tok-123456")
                .secret_value("pw"),
        );
        let kept = policy
            .filter(vars(&[
                ("PATH", "/usr/bin"),
                ("HOME", "/home/u"),
                ("LC_ALL", "C"),
                ("NODE_OPTIONS", "--max-old-space-size=64"),
                ("PYTHONHOME", "/opt/py"),
                ("PYTHONSTARTUP", "/x.py"),
                ("MYAPP_MODE", "fast"),
                ("MYAPP_URL", "https://u:tok-123456@h/"),
                ("MYAPP_SHORT", "pw"),
                ("MYAPP_LONGER", "pwx"),
                ("OFFLOAD_TOKEN", "tok-123456"),
                ("OFFLOAD_STORE", "postgres://u:p@h/db"),
                ("OFFLOAD_LOG", "debug"),
                ("AWS_SECRET_ACCESS_KEY", "k"),
                ("DATABASE_URL", "postgres://"),
            ]))
            .unwrap();
        let names: Vec<_> = kept.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "PATH",
                "HOME",
                "LC_ALL",
                "NODE_OPTIONS",
                "PYTHONHOME",
                "MYAPP_MODE",
                "MYAPP_LONGER"
            ]
        );
    }

    #[test]
    fn an_empty_list_inherits_nothing() {
        let kept = EnvPolicy::AllowList(EnvAllowList::empty())
            .filter(vars(&[("PATH", "/bin")]))
            .unwrap();
        assert!(kept.is_empty());
        // Empty secrets are ignored (they would match everything).
        assert!(EnvAllowList::new()
            .secret_value("")
            .admits(OsStr::new("PATH"), OsStr::new("/bin")));
    }

    #[test]
    fn a_variable_that_cannot_be_set_as_written_is_named() {
        assert!(check_env_var("A", "x=y").is_ok());
        assert!(check_env_var("LC_ALL", "").is_ok());
        for (name, value, why) in [
            ("", "x", "empty"),
            ("A=B", "x", "'='"),
            ("A\0", "x", "NUL"),
            ("A", "x\0y", "NUL"),
        ] {
            let e = check_env_var(name, value).unwrap_err();
            assert_eq!(e.name, name);
            assert!(e.to_string().contains(why), "{e}");
        }
    }
}
