//! `NativeChildJob` and `NativeProcess`: `offload_process::ChildJob` for JavaScript.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use napi_derive::napi;
use offload_process::{
    CallError, ChildJob, ChildJobConfig, ExecError, ExecOptions, JobProcess, Outcome, ProcessEvent,
    ResourceLimits, Runtime, Runtimes,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::{emit, emit_with, js_error, ms, parse, signal_number, EventFn};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
struct JobOpts {
    jobs_dir: String,
    kill_signal: Option<String>,
    kill_grace_ms: Option<u64>,
    node: Option<String>,
    warm_spare: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
struct ExecOpts {
    timeout_ms: Option<u64>,
    cancel_grace_ms: Option<u64>,
    env: BTreeMap<String, String>,
    cwd: Option<String>,
    args: Vec<String>,
    kill_signal: Option<String>,
    memory_limit: Option<u64>,
    cpu_seconds: Option<u64>,
    id: Option<String>,
}

impl ExecOpts {
    fn options(self) -> napi::Result<ExecOptions> {
        let mut o = ExecOptions::default();
        o.timeout = self.timeout_ms.map(ms);
        if let Some(g) = self.cancel_grace_ms {
            o.cancel_grace = ms(g);
        }
        o.env = self.env.into_iter().collect();
        o.cwd = self.cwd.map(PathBuf::from);
        o.args = self.args;
        if let Some(s) = &self.kill_signal {
            o.kill_signal = Some(signal_number(s)?);
        }
        o.limits = ResourceLimits::of_host(self.memory_limit, self.cpu_seconds);
        o.id = self.id;
        Ok(o)
    }
}

/// The stable code of a start failure.
fn exec_error(job: &str, e: &ExecError) -> napi::Error {
    js_error(e.code(), format!("job {job:?}: {e}"))
}

fn forward(mut rx: broadcast::Receiver<ProcessEvent>, tsfn: EventFn, until_exit: bool) {
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    let last = until_exit && matches!(ev, ProcessEvent::Exited { .. });
                    let credit = crate::process_credit(&ev);
                    emit_with(
                        &tsfn,
                        serde_json::to_string(&ev).unwrap_or_default(),
                        credit,
                    );
                    if last {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    emit(&tsfn, json!({"event": "lost", "lost": n}).to_string());
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

/// Runs each job in a fresh child process.
#[napi]
pub struct NativeChildJob {
    jobs: ChildJob,
}

#[napi]
impl NativeChildJob {
    /// `config` is JSON `{jobsDir, killSignal?, killGraceMs?, node?, warmSpare?}`; `on_event`
    /// gets the manager-level events of every process (receiver `job`/`all`, progress,
    /// answers, exits) as JSON `ProcessEvent`s.
    #[napi(constructor)]
    pub fn new(config: String, on_event: EventFn) -> napi::Result<Self> {
        let o: JobOpts = parse("ChildJob options", &config)?;
        let mut c = ChildJobConfig::with_jobs_dir(&o.jobs_dir).handle_signals(false);
        let signal = match &o.kill_signal {
            Some(s) => signal_number(s)?,
            None => libc::SIGTERM,
        };
        c = c.kill_policy(signal, ms(o.kill_grace_ms.unwrap_or(1000)));
        if let Some(node) = o.node {
            c = c.runtimes(Runtimes {
                node: PathBuf::from(node),
                ..Runtimes::default()
            });
        }
        c = c
            .warm_spare(o.warm_spare)
            .event_backpressure(crate::EVENTS_IN_FLIGHT);
        let jobs = napi::bindgen_prelude::within_runtime_if_available(|| ChildJob::new(c));
        let rx = jobs.events();
        napi::bindgen_prelude::within_runtime_if_available(|| forward(rx, on_event, false));
        Ok(Self { jobs })
    }

    /// Starts `job` (a name in the jobs folder, or with `by_path` an absolute file) with
    /// `params` (JSON) and returns its process at once (the spawn is synchronous, a few ms).
    /// `on_event` gets that process's own events (receiver `task`/`all`, progress, answers,
    /// logs, its exit).
    #[napi]
    pub fn exec(
        &self,
        job: String,
        by_path: bool,
        params: String,
        opts: String,
        on_event: EventFn,
    ) -> napi::Result<NativeProcess> {
        let params: Value = parse("params", &params)?;
        let opts = parse::<ExecOpts>("exec options", &opts)?.options()?;
        let jobs = self.jobs.clone();
        let name = job.clone();
        let proc = napi::bindgen_prelude::block_on(async move {
            if by_path {
                jobs.exec_path(Path::new(&name), params, opts).await
            } else {
                jobs.exec(&name, params, opts).await
            }
        })
        .map_err(|e| exec_error(&job, &e))?;
        let rx = proc.events();
        napi::bindgen_prelude::within_runtime_if_available(|| forward(rx, on_event, true));
        Ok(NativeProcess { proc })
    }

    /// Starts a Node runner with no job (ee-core's `createProcess`); send it work with
    /// `dispatch`.
    #[napi]
    pub fn create_process(&self, opts: String, on_event: EventFn) -> napi::Result<NativeProcess> {
        let opts = parse::<ExecOpts>("process options", &opts)?.options()?;
        let jobs = self.jobs.clone();
        let proc = napi::bindgen_prelude::block_on(async move {
            jobs.create_process(Runtime::Node, opts).await
        })
        .map_err(|e| exec_error("(runner)", &e))?;
        let rx = proc.events();
        napi::bindgen_prelude::within_runtime_if_available(|| forward(rx, on_event, true));
        Ok(NativeProcess { proc })
    }

    /// The live processes' pids.
    #[napi]
    pub fn pids(&self) -> Vec<u32> {
        self.jobs.pids()
    }

    /// Kills every live process (signal, grace, SIGKILL) and waits for them.
    #[napi]
    pub async fn kill_all(&self) {
        self.jobs.kill_all().await;
    }
}

/// One job process.
#[napi]
pub struct NativeProcess {
    proc: JobProcess,
}

fn outcome_json(o: &Outcome) -> String {
    serde_json::to_string(o).unwrap_or_else(|_| {
        r#"{"outcome":"protocol_error","message":"unserialisable outcome"}"#.into()
    })
}

#[napi]
impl NativeProcess {
    /// Its pid (also its process group id).
    #[napi(getter)]
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Whether it still runs.
    #[napi(getter)]
    pub fn running(&self) -> bool {
        self.proc.is_running()
    }

    /// The outcome of its job (JSON), as soon as it is known.
    #[napi]
    pub async fn outcome(&self) -> String {
        outcome_json(&self.proc.outcome().await)
    }

    /// The final outcome (JSON) once the process and its group are gone.
    #[napi]
    pub async fn exited(&self) -> String {
        outcome_json(&self.proc.exited().await)
    }

    /// Kills the group: `signal`, then SIGKILL if it is still alive after `grace_ms`, decided
    /// on the actual exit. Resolves to the final outcome (JSON).
    #[napi]
    pub async fn kill(&self, signal: String, grace_ms: u32) -> napi::Result<String> {
        let sig = signal_number(&signal)?;
        Ok(outcome_json(
            &self.proc.kill_with(sig, ms(u64::from(grace_ms))).await,
        ))
    }

    /// ee-core's `dispatch(cmd, jobPath, ...params)`: a `run` of `job` (`path`: its file) with
    /// positional `params` (JSON array); returns the run's id.
    #[napi]
    pub fn dispatch(
        &self,
        cmd: String,
        job: String,
        path: Option<String>,
        params: String,
    ) -> napi::Result<String> {
        let params: Vec<Value> = parse("params", &params)?;
        if cmd != "run" {
            return Err(js_error(
                "InvalidArgument",
                format!("unknown command {cmd:?}: only \"run\" exists"),
            ));
        }
        let id = format!(
            "d{}-{}",
            self.proc.pid(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let first = params.first().cloned().unwrap_or(Value::Null);
        let mut run = offload_protocol::Run::new(id.clone(), job, first).with_args(params);
        if let Some(p) = path {
            run = run.with_path(p);
        }
        self.proc
            .send(offload_protocol::ToWorker::Run(run))
            .map_err(|e| js_error("ProcessGone", e))?;
        Ok(id)
    }

    /// Calls `func` of the job (`job`, `path`: its file) with `args` (JSON array); resolves to
    /// JSON `{"value"}` or `{"error": {"code", "name", "message", "stack"}}`.
    #[napi]
    pub async fn call(
        &self,
        job: String,
        path: Option<String>,
        func: String,
        args: String,
    ) -> napi::Result<String> {
        let args: Vec<Value> = parse("args", &args)?;
        if job.is_empty() && path.is_none() {
            return Ok(match self.proc.call(&func, args).await {
                Ok(v) => json!({ "value": v }).to_string(),
                Err(e) => call_error(e),
            });
        }
        // A call naming its job: sent raw, answered as an `Answer` event with its id.
        let mut events = self.proc.events();
        let id = format!(
            "c{}-{}",
            self.proc.pid(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let mut call = offload_protocol::Call::new(id.clone(), job, func, args);
        if let Some(p) = path {
            call = call.with_path(p);
        }
        self.proc
            .send(offload_protocol::ToWorker::Call(call))
            .map_err(|e| js_error("ProcessGone", e))?;
        loop {
            match events.recv().await {
                Ok(ProcessEvent::Answer {
                    id: got, result, ..
                }) if got == id => {
                    return Ok(match result {
                        Ok(v) => json!({ "value": v }).to_string(),
                        Err(e) => json!({"error": {"code": "Failed", "name": e.name, "message": e.message, "stack": e.stack}}).to_string(),
                    });
                }
                Ok(ProcessEvent::Exited { outcome, .. }) => {
                    return Ok(json!({"error": {"code": "ProcessGone", "message": format!("the process ended before answering: {outcome}"), "outcome": outcome}}).to_string());
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    return Ok(
                        json!({"error": {"code": "ProcessGone", "message": "the process is gone"}})
                            .to_string(),
                    );
                }
            }
        }
    }

    /// The last lines of its stderr.
    #[napi]
    pub fn stderr_tail(&self) -> Vec<String> {
        self.proc.stderr_tail()
    }
}

fn call_error(e: CallError) -> String {
    match e {
        CallError::Failed(info) => json!({"error": {"code": "Failed", "name": info.name, "message": info.message, "stack": info.stack}}).to_string(),
        CallError::Ended(o) => json!({"error": {"code": "ProcessGone", "message": format!("the process ended before answering: {o}"), "outcome": o}}).to_string(),
        other => json!({"error": {"code": "ProcessGone", "message": other.to_string()}}).to_string(),
    }
}
