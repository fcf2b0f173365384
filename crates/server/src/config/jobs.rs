//! `[job."<name>"]` of `offload.toml`: what one job name sets for every submit of it, over its
//! pool's `[[pool]]` section and under what a submit asks.
//!
//! ```toml
//! [job."reports/daily"]
//! backoff = { kind = "list", delays_ms = [1000, 5000, 30000] }
//! keep_result_ms = 3600000   # a succeeded run is purged an hour after it ended
//! key_ttl_ms = 600000        # a repeated idempotency key finds its first job for 10 minutes
//! rate = "10/1s"             # at most 10 starts a second (`config/throttle.rs`)
//! max_running = 2            # at most 2 running at once (also `concurrency = 2`)
//! unique = "while-active"    # a submit returns the unfinished job of the same params
//! ```

use std::collections::BTreeMap;

use offload_api::Backoff;
use offload_store::limits::{human_ms, MAX_KEEP_RESULT_MS, MAX_KEY_TTL_MS};
use serde::Deserialize;

use super::ConfigError;

/// One `[job."<name>"]` section.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobSection {
    /// The retry backoff of the job (a submit's `backoff` wins).
    pub backoff: Option<Backoff>,
    /// Keep a succeeded job this long (a submit's `keep_result_ms` wins; absent: the daemon's
    /// `retention_hours`).
    pub keep_result_ms: Option<u64>,
    /// The idempotency window of the job's keys, in ms (a submit's `key_ttl_ms` wins; absent:
    /// `idempotency_hours`).
    pub key_ttl_ms: Option<u64>,
    /// At most this many starts of the job per period, on every node (`"10/1s"` or
    /// `{ limit, period_ms }`; `config/throttle.rs`).
    pub rate: Option<super::throttle::RateSpec>,
    /// At most this many of its jobs running at once, on every node.
    #[serde(alias = "concurrency")]
    pub max_running: Option<i64>,
    /// `"while-active"`: every submit of the job is unique (`SubmitRequest::unique`).
    pub unique: Option<offload_api::Unique>,
}

/// Every `[job."<name>"]` section, by exact job name.
pub type JobSections = BTreeMap<String, JobSection>;

/// Checks the sections' numbers against the bounds jobs are held to.
pub(crate) fn check(sections: &JobSections) -> Result<(), ConfigError> {
    for (name, s) in sections {
        if let Some(b) = &s.backoff {
            crate::backoff::to_store(b)
                .check()
                .map_err(|e| ConfigError::Invalid(format!("[job.{name:?}] {e}")))?;
        }
        if let Some(t) = s.key_ttl_ms.filter(|t| !(1..=MAX_KEY_TTL_MS).contains(t)) {
            return Err(ConfigError::Invalid(format!(
                "[job.{name:?}] key_ttl_ms {t} is out of range: 1..={MAX_KEY_TTL_MS} ({})",
                human_ms(MAX_KEY_TTL_MS)
            )));
        }
        if let Some(k) = s.keep_result_ms.filter(|&k| k > MAX_KEEP_RESULT_MS) {
            return Err(ConfigError::Invalid(format!(
                "[job.{name:?}] keep_result_ms {k} is out of range: 0..={MAX_KEEP_RESULT_MS} ({})",
                human_ms(MAX_KEEP_RESULT_MS)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FileConfig;

    #[test]
    fn sections_read_by_name_and_are_bounded() {
        let file: FileConfig = toml::from_str(
            r#"
            [job."reports/daily"]
            backoff = { kind = "list", delays_ms = [1000, 5000] }
            "#,
        )
        .unwrap();
        let s = &file.job["reports/daily"];
        assert_eq!(
            s.backoff,
            Some(Backoff::List {
                delays_ms: vec![1000, 5000],
                max_delay_ms: None,
                jitter: false,
            })
        );
        check(&file.job).unwrap();
        let file: FileConfig =
            toml::from_str("[job.x]\nbackoff = { kind = \"list\", delays_ms = [] }").unwrap();
        let e = check(&file.job).unwrap_err().to_string();
        assert!(e.contains("[job.\"x\"] backoff.delays_ms"), "{e}");
        assert!(toml::from_str::<FileConfig>("[job.x]\nretries = 3").is_err());
        let file: FileConfig = toml::from_str("[job.x]\nkeep_result_ms = 315360000001").unwrap();
        let e = check(&file.job).unwrap_err().to_string();
        assert!(
            e.contains("keep_result_ms 315360000001 is out of range"),
            "{e}"
        );
        let file: FileConfig = toml::from_str("[job.x]\nkey_ttl_ms = 0").unwrap();
        let e = check(&file.job).unwrap_err().to_string();
        assert!(e.contains("key_ttl_ms 0 is out of range: 1..="), "{e}");
    }
}
