//! `NativeChildJob` and `NativeProcess`: `offload_process::ChildJob` for Python (one fresh
//! process a run).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use offload_process::{
    ChildJob, ChildJobConfig, ExecError, ExecOptions, JobProcess, ResourceLimits, Runtimes,
};
use pyo3::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::deliver::call_back;
use crate::{ms, parse, py_error, runtime, signal_number};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct JobOpts {
    jobs_dir: String,
    kill_signal: Option<String>,
    kill_grace_ms: Option<u64>,
    python: Option<String>,
    node: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct ExecOpts {
    timeout_ms: Option<u64>,
    cancel_grace_ms: Option<u64>,
    env: BTreeMap<String, String>,
    cwd: Option<String>,
    memory_limit: Option<u64>,
    cpu_seconds: Option<u64>,
}

impl ExecOpts {
    fn options(self) -> ExecOptions {
        let mut o = ExecOptions::default();
        o.timeout = self.timeout_ms.map(ms);
        if let Some(g) = self.cancel_grace_ms {
            o.cancel_grace = ms(g);
        }
        o.env = self.env.into_iter().collect();
        o.cwd = self.cwd.map(PathBuf::from);
        o.limits = ResourceLimits::of_host(self.memory_limit, self.cpu_seconds);
        o
    }
}

/// The stable code of a start failure.
fn exec_error(job: &str, e: &ExecError) -> PyErr {
    py_error(e.code(), format!("job {job:?}: {e}"))
}

/// Runs each job in a fresh child process.
#[pyclass(module = "offload._native", frozen)]
pub(crate) struct NativeChildJob {
    jobs: ChildJob,
}

#[pymethods]
impl NativeChildJob {
    /// `config` is JSON `{jobs_dir, kill_signal?, kill_grace_ms?, python?, node?}`.
    #[new]
    fn new(config: &str) -> PyResult<Self> {
        let o: JobOpts = parse("ChildJob options", config)?;
        let signal = match &o.kill_signal {
            Some(s) => signal_number(s)?,
            None => libc::SIGTERM,
        };
        let mut runtimes = Runtimes::default();
        if let Some(p) = o.python {
            runtimes.python = PathBuf::from(p);
        }
        if let Some(n) = o.node {
            runtimes.node = PathBuf::from(n);
        }
        let c = ChildJobConfig::with_jobs_dir(&o.jobs_dir)
            .handle_signals(false)
            .kill_policy(signal, ms(o.kill_grace_ms.unwrap_or(1000)))
            .runtimes(runtimes);
        let _rt = runtime().enter();
        Ok(Self {
            jobs: ChildJob::new(c),
        })
    }

    /// Starts `job` (a name in the jobs folder, or with `by_path` a file anywhere) with
    /// `params` (JSON) and returns its process once spawned. `on_done(json)` gets
    /// `{"pid", "outcome"}` when it ends.
    fn exec(
        &self,
        py: Python<'_>,
        job: String,
        by_path: bool,
        params: &str,
        opts: &str,
        on_done: Py<PyAny>,
    ) -> PyResult<NativeProcess> {
        let params: Value = parse("params", params)?;
        let opts = parse::<ExecOpts>("exec options", opts)?.options();
        let jobs = self.jobs.clone();
        let name = job.clone();
        let proc = py
            .detach(|| {
                runtime().block_on(async move {
                    if by_path {
                        jobs.exec_path(Path::new(&name), params, opts).await
                    } else {
                        jobs.exec(&name, params, opts).await
                    }
                })
            })
            .map_err(|e| exec_error(&job, &e))?;
        let waiter = proc.clone();
        runtime().spawn(async move {
            let outcome = waiter.outcome().await;
            let answer = json!({"pid": waiter.pid(), "outcome": outcome});
            call_back(on_done, answer.to_string());
        });
        Ok(NativeProcess { proc })
    }

    /// The live processes' pids.
    fn pids(&self) -> Vec<u32> {
        self.jobs.pids()
    }

    /// Kills every process at once.
    fn kill_all(&self, py: Python<'_>) {
        py.detach(|| runtime().block_on(self.jobs.kill_all()));
    }
}

/// One job's process.
#[pyclass(module = "offload._native", frozen)]
pub(crate) struct NativeProcess {
    proc: JobProcess,
}

#[pymethods]
impl NativeProcess {
    /// Its pid.
    #[getter]
    fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Kills it: `signal` to its group, SIGKILL after `grace_ms`; returns at once.
    fn kill(&self, signal: &str, grace_ms: u64) -> PyResult<()> {
        let sig = signal_number(signal)?;
        let _rt = runtime().enter();
        self.proc.start_kill_with(sig, ms(grace_ms));
        Ok(())
    }
}
