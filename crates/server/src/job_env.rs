//! The environment jobs get: the process crate's allow-list (`offload_process::EnvAllowList`:
//! `PATH`, `HOME`, `LANG`, `LC_*`, `TZ`, `TMPDIR`, `USER`, `NODE_*`, `PYTHON*`, …, never
//! `OFFLOAD_*`), plus `[job_env] allow`, minus `[job_env] secret`; any variable holding the
//! token, the store URL or a secret variable's value is dropped too. The daemon always uses it
//! (see `docs/security.md`).

use offload_process::{EnvAllowList, EnvPolicy};

use crate::config::ServeConfig;

/// The policy of every pool and process runner of this daemon.
pub(crate) fn policy(cfg: &ServeConfig) -> EnvPolicy {
    let mut list = EnvAllowList::new();
    for pattern in &cfg.job_env.allow {
        list = list.allow(pattern.clone());
    }
    for pattern in &cfg.job_env.secret {
        list = list.deny(pattern.clone());
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            let hit = match pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == pattern,
            };
            if hit {
                list = list.secret_value(value);
            }
        }
    }
    if let Some(token) = &cfg.token {
        list = list.secret_value(token);
    }
    if let Some(store) = cfg.store.as_deref().filter(|s| s.contains("://")) {
        list = list.secret_value(store);
    }
    EnvPolicy::AllowList(list)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    #[test]
    fn the_token_and_store_url_never_pass() {
        let mut cfg = ServeConfig::new("jobs", ".offload");
        cfg.token = Some("very-secret-token".into());
        cfg.store = Some("postgres://u:pw@db/offload".into());
        cfg.job_env.allow.push("MYAPP_*".into());
        cfg.job_env.secret.push("MYAPP_KEY".into());
        let vars = |l: &[(&str, &str)]| -> Vec<(OsString, OsString)> {
            l.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
        };
        let kept = policy(&cfg)
            .filter(vars(&[
                ("PATH", "/bin"),
                ("OFFLOAD_TOKEN", "very-secret-token"),
                ("OFFLOAD_STORE", "postgres://u:pw@db/offload"),
                ("MYAPP_COPY", "Bearer very-secret-token"),
                ("MYAPP_DB", "postgres://u:pw@db/offload"),
                ("MYAPP_KEY", "k"),
                ("MYAPP_MODE", "fast"),
            ]))
            .unwrap();
        let names: Vec<_> = kept.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(names, ["PATH", "MYAPP_MODE"]);
    }
}
