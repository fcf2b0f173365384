//! A pool's options as a host binding receives them: one JSON object from JavaScript
//! (`bindings/node`) or Python (`bindings/python`), read into a [`PoolConfig`] here, once for
//! both, so the two bindings cannot drift apart in what an option means.
//!
//! Keys are `snake_case` (the Node binding renames its `camelCase` keys first). Unknown keys
//! are refused. Each host validates its options for its users first, with its own words;
//! [`PoolConfig`]'s bounds are checked again by [`ChildPool::start`](crate::ChildPool::start).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use offload_process::{ResourceLimits, Runtimes};
use serde::Deserialize;

use crate::{Algorithm, Backpressure, PoolConfig, WorkerKind};

/// What a host may set of a pool (read from JSON with serde; every key is optional but
/// `jobs_dir`, the names are the fields below).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostPoolOptions {
    /// The folder of the job files.
    jobs_dir: String,
    /// `"python"`, `"node"`, or none for the host's own default; `program` wins over it.
    worker: Option<String>,
    /// A native worker program's path.
    program: Option<String>,
    /// Extra arguments for the worker program.
    args: Vec<String>,
    name: Option<String>,
    min: Option<usize>,
    max: Option<usize>,
    concurrency: Option<u32>,
    /// A balancing algorithm's name (`polling`, `minimumConnection`, …).
    algorithm: Option<String>,
    spread_first: bool,
    weights: Option<Vec<f64>>,
    timeout_ms: Option<u64>,
    attempts: Option<u32>,
    retry_on_error: Option<bool>,
    retry_delay_ms: Option<u64>,
    recycle_after_jobs: Option<u64>,
    recycle_max_rss: Option<u64>,
    recycle_max_age_ms: Option<u64>,
    recycle_max_heap: Option<u64>,
    recycle_max_cpu: Option<u32>,
    recycle_cpu_samples: Option<u32>,
    /// `0`: never ping.
    ping_interval_ms: Option<u64>,
    ping_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    /// A signal's name ([`signal_by_name`]).
    kill_signal: Option<String>,
    kill_grace_ms: Option<u64>,
    cancel_grace_ms: Option<u64>,
    queue_bound: Option<usize>,
    /// Refuse a submit when the queue is full instead of waiting for room.
    fail_fast: Option<bool>,
    env: BTreeMap<String, String>,
    start_timeout_ms: Option<u64>,
    health_interval_ms: Option<u64>,
    max_restarts: Option<u32>,
    restart_interval_ms: Option<u64>,
    poison_after: Option<u32>,
    /// The Python and Node interpreters' paths.
    python: Option<String>,
    node: Option<String>,
    /// Bytes of address space per worker.
    memory_limit: Option<u64>,
    cpu_seconds: Option<u64>,
}

/// An option a host sent that means nothing: its name and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{option}: {message}")]
#[non_exhaustive]
pub struct HostOptionError {
    /// The option, as named in [`HostPoolOptions`].
    pub option: &'static str,
    /// What is wrong with it, and what to use instead.
    pub message: String,
}

impl HostPoolOptions {
    /// The pool's configuration: `default_worker` when neither `worker` nor `program` says
    /// otherwise; `handle_signals` off (a host process owns its signals).
    ///
    /// # Errors
    ///
    /// [`HostOptionError`] for an unknown worker, algorithm or signal name.
    pub fn into_config(self, default_worker: WorkerKind) -> Result<PoolConfig, HostOptionError> {
        let worker = match (self.worker.as_deref(), &self.program) {
            (_, Some(p)) => WorkerKind::Program(PathBuf::from(p)),
            (None, None) => default_worker,
            (Some("python"), None) => WorkerKind::Python,
            (Some("node"), None) => WorkerKind::Node,
            (Some(other), None) => {
                return Err(HostOptionError {
                    option: "worker",
                    message: format!(
                        "unknown worker {other:?}: use \"python\", \"node\" or program"
                    ),
                })
            }
        };
        let mut c = PoolConfig::new(worker, &self.jobs_dir);
        c.handle_signals = false;
        c.args = self.args;
        c.spread_first = self.spread_first;
        if let Some(a) = &self.algorithm {
            c.algorithm = a.parse::<Algorithm>().map_err(|e| HostOptionError {
                option: "algorithm",
                message: e.to_string(),
            })?;
        }
        if let Some(w) = self.weights {
            c.weights = w;
        }
        if let Some(n) = self.name {
            c.name = n;
        }
        c.min = self.min.unwrap_or(c.min);
        // An explicit max below min is refused by the pool's start, not raised in silence.
        c.max = self.max.unwrap_or_else(|| c.max.max(c.min));
        if let Some(n) = self.concurrency {
            c.concurrency = n;
        }
        c.job_timeout = self.timeout_ms.map(ms);
        if let Some(n) = self.attempts {
            c.retry.max_attempts = n.max(1);
        }
        if let Some(b) = self.retry_on_error {
            c.retry.on_error = b;
        }
        if let Some(d) = self.retry_delay_ms {
            c.retry.base = ms(d);
        }
        c.recycle.after_jobs = self.recycle_after_jobs;
        c.recycle.max_rss = self.recycle_max_rss;
        c.recycle.max_age = self.recycle_max_age_ms.map(ms);
        c.recycle.max_heap = self.recycle_max_heap;
        c.recycle.max_cpu = self.recycle_max_cpu;
        if let Some(n) = self.recycle_cpu_samples {
            c.recycle.cpu_samples = n;
        }
        if let Some(p) = self.ping_interval_ms {
            c.ping_interval = (p > 0).then(|| ms(p));
        }
        if let Some(t) = self.ping_timeout_ms {
            c.ping_timeout = ms(t);
        }
        c.idle_timeout = self.idle_timeout_ms.map(ms);
        if let Some(s) = &self.kill_signal {
            c.kill_signal = signal_by_name(s)?;
        }
        if let Some(g) = self.kill_grace_ms {
            c.kill_grace = ms(g);
        }
        if let Some(g) = self.cancel_grace_ms {
            c.cancel_grace = ms(g);
        }
        if let Some(q) = self.queue_bound {
            c.queue_bound = q;
        }
        if self.fail_fast == Some(true) {
            c.backpressure = Backpressure::FailFast;
        }
        c.env = self.env.into_iter().collect();
        if let Some(t) = self.start_timeout_ms {
            c.start_timeout = ms(t);
        }
        if let Some(t) = self.health_interval_ms {
            c.health_interval = ms(t);
        }
        if let Some(n) = self.max_restarts {
            c.restart.max_restarts = n;
        }
        if let Some(t) = self.restart_interval_ms {
            c.restart.interval = ms(t);
        }
        if let Some(n) = self.poison_after {
            c.poison_after = n;
        }
        let mut runtimes = Runtimes::default();
        if let Some(p) = self.python {
            runtimes.python = PathBuf::from(p);
        }
        if let Some(n) = self.node {
            runtimes.node = PathBuf::from(n);
        }
        c.runtimes = runtimes;
        c.limits = ResourceLimits::of_host(self.memory_limit, self.cpu_seconds);
        Ok(c)
    }
}

/// The signals a host may name for a kill: `SIGTERM`, `SIGINT`, `SIGKILL`, `SIGHUP`,
/// `SIGQUIT`, `SIGUSR1`, `SIGUSR2`.
///
/// # Errors
///
/// [`HostOptionError`] (option `kill_signal`) for any other name.
pub fn signal_by_name(name: &str) -> Result<i32, HostOptionError> {
    Ok(match name {
        "SIGTERM" => libc::SIGTERM,
        "SIGINT" => libc::SIGINT,
        "SIGKILL" => libc::SIGKILL,
        "SIGHUP" => libc::SIGHUP,
        "SIGQUIT" => libc::SIGQUIT,
        "SIGUSR1" => libc::SIGUSR1,
        "SIGUSR2" => libc::SIGUSR2,
        other => {
            return Err(HostOptionError {
                option: "kill_signal",
                message: format!(
                    "unknown signal {other:?}: use SIGTERM, SIGINT, SIGKILL, SIGHUP, SIGQUIT, \
                     SIGUSR1 or SIGUSR2"
                ),
            })
        }
    })
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<PoolConfig, String> {
        let o: HostPoolOptions = serde_json::from_str(json).map_err(|e| e.to_string())?;
        o.into_config(WorkerKind::Node).map_err(|e| e.to_string())
    }

    #[test]
    fn every_option_reaches_the_config() {
        let c = read(
            r#"{"jobs_dir":"/j","program":"/w","args":["-x"],"name":"p","min":2,"max":3,
                "concurrency":4,"algorithm":"weights","spread_first":true,"weights":[1,2],
                "timeout_ms":5,"attempts":0,"retry_on_error":true,"retry_delay_ms":7,
                "recycle_after_jobs":8,"recycle_max_rss":9,"recycle_max_age_ms":10,
                "recycle_max_heap":11,"recycle_max_cpu":12,"recycle_cpu_samples":13,
                "ping_interval_ms":0,"ping_timeout_ms":14,"idle_timeout_ms":15,
                "kill_signal":"SIGINT","kill_grace_ms":16,"cancel_grace_ms":17,"queue_bound":18,
                "fail_fast":true,"env":{"A":"1"},"start_timeout_ms":19,"health_interval_ms":20,
                "max_restarts":21,"restart_interval_ms":22,"poison_after":23,"python":"/py",
                "node":"/n","memory_limit":24,"cpu_seconds":25}"#,
        )
        .unwrap();
        assert_eq!(c.worker, WorkerKind::Program(PathBuf::from("/w")));
        assert_eq!((c.args, c.name.as_str()), (vec!["-x".to_owned()], "p"));
        assert_eq!((c.min, c.max, c.concurrency), (2, 3, 4));
        assert!(c.spread_first && !c.handle_signals);
        assert_eq!(c.weights, vec![1.0, 2.0]);
        assert_eq!(c.job_timeout, Some(ms(5)));
        assert_eq!(
            (c.retry.max_attempts, c.retry.on_error, c.retry.base),
            (1, true, ms(7))
        );
        assert_eq!(c.recycle.after_jobs, Some(8));
        assert_eq!(
            (c.recycle.max_rss, c.recycle.max_age),
            (Some(9), Some(ms(10)))
        );
        assert_eq!(
            (c.recycle.max_heap, c.recycle.max_cpu, c.recycle.cpu_samples),
            (Some(11), Some(12), 13)
        );
        assert_eq!(
            (c.ping_interval, c.ping_timeout, c.idle_timeout),
            (None, ms(14), Some(ms(15)))
        );
        assert_eq!(
            (c.kill_signal, c.kill_grace, c.cancel_grace),
            (libc::SIGINT, ms(16), ms(17))
        );
        assert_eq!(
            (c.queue_bound, c.backpressure),
            (18, Backpressure::FailFast)
        );
        assert_eq!(c.env, vec![("A".to_owned(), "1".to_owned())]);
        assert_eq!((c.start_timeout, c.health_interval), (ms(19), ms(20)));
        assert_eq!(
            (c.restart.max_restarts, c.restart.interval, c.poison_after),
            (21, ms(22), 23)
        );
        assert_eq!(c.runtimes.python, PathBuf::from("/py"));
        assert_eq!(c.runtimes.node, PathBuf::from("/n"));
        assert_eq!(
            c.limits,
            ResourceLimits::none().address_space(24).cpu_seconds(25)
        );
    }

    #[test]
    fn the_worker_is_the_hosts_default_unless_named() {
        assert_eq!(
            read(r#"{"jobs_dir":"/j"}"#).unwrap().worker,
            WorkerKind::Node
        );
        assert_eq!(
            read(r#"{"jobs_dir":"/j","worker":"python"}"#)
                .unwrap()
                .worker,
            WorkerKind::Python
        );
        let p = read(r#"{"jobs_dir":"/j","worker":"python","program":"/w"}"#).unwrap();
        assert_eq!(p.worker, WorkerKind::Program(PathBuf::from("/w")));
        let grown = read(r#"{"jobs_dir":"/j","min":64}"#).unwrap();
        assert_eq!(
            (grown.min, grown.max),
            (64, 64),
            "a default max grows to min"
        );
        let ping = read(r#"{"jobs_dir":"/j","ping_interval_ms":250}"#).unwrap();
        assert_eq!(ping.ping_interval, Some(ms(250)));
    }

    #[test]
    fn bad_options_are_refused_with_their_name() {
        let e = read(r#"{"jobs_dir":"/j","worker":"ruby"}"#).unwrap_err();
        assert!(e.starts_with("worker: unknown worker \"ruby\""), "{e}");
        let e = read(r#"{"jobs_dir":"/j","algorithm":"nope"}"#).unwrap_err();
        assert!(e.starts_with("algorithm: "), "{e}");
        let e = read(r#"{"jobs_dir":"/j","kill_signal":"SIGSTOP"}"#).unwrap_err();
        assert!(
            e.starts_with("kill_signal: unknown signal \"SIGSTOP\""),
            "{e}"
        );
        let e = read(r#"{"jobs_dir":"/j","typo":1}"#).unwrap_err();
        assert!(e.contains("unknown field `typo`"), "{e}");
    }
}
