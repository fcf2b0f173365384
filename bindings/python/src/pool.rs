//! `NativePool`: `offload_pool::ChildPool` for Python (its runs are `run.rs`'s `NativeRun`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use offload_pool::{
    ChildPool, HostPoolOptions, JobEvent, KillMode, KillOrder, RunOptions, StartError, WorkerKind,
};
use pyo3::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use tokio::sync::broadcast;

use crate::deliver::{call_back, call_shared};
use crate::lock;
use crate::run::{ended, refusal, NativeRun, Slot};
use crate::{ms, parse, py_error, runtime};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RunOpts {
    timeout_ms: Option<u64>,
    attempts: Option<u32>,
    key: Option<String>,
    /// Pinned to this worker (by pid).
    worker: Option<u32>,
}

/// A kill mode by name, with its grace.
fn kill_mode(mode: &str, grace_ms: u64) -> PyResult<KillMode> {
    let grace = ms(grace_ms);
    match mode {
        "soft" => Ok(KillMode::Soft { grace }),
        "hard" => Ok(KillMode::Hard { grace }),
        other => Err(py_error(
            "InvalidArgument",
            format!("unknown kill mode {other:?}: use \"soft\" or \"hard\""),
        )),
    }
}

/// A supervised pool of resident worker processes.
#[pyclass(module = "offload._native", frozen)]
pub(crate) struct NativePool {
    pool: ChildPool,
}

#[pymethods]
impl NativePool {
    /// Starts a pool (`config` is JSON); returns when `min` workers are ready.
    ///
    /// With `event_backpressure`, a worker's channel is read only as fast as its progress and
    /// events are delivered (`offload_process::EventFlow`): none is dropped; every run's events
    /// must then be read as they come (the `submit` watch does).
    #[new]
    #[pyo3(signature = (config, event_backpressure=false))]
    fn new(py: Python<'_>, config: &str, event_backpressure: bool) -> PyResult<Self> {
        let mut config = parse::<HostPoolOptions>("pool options", config)?
            .into_config(WorkerKind::Python)
            .map_err(|e| py_error("InvalidArgument", e))?;
        if event_backpressure {
            config.event_backpressure = Some(offload_process::MAX_EVENT_BACKPRESSURE);
        }
        let pool = py
            .detach(|| runtime().block_on(ChildPool::start(config)))
            .map_err(|e| match e {
                // A limit of the options (min above max, ping below 10 ms, …), named by the pool.
                StartError::Config(m) => py_error("InvalidArgument", m),
                e => py_error("StartFailed", e),
            })?;
        Ok(Self { pool })
    }

    /// Submits `job` with `params` (JSON) and returns at once. `on_done(json)` is called once,
    /// from the delivery thread: `{"id", "outcome", "attempts"}`, or `{"error": {"code",
    /// "message"}}` when the pool refused the run. With `track_start`, the run's `started()`
    /// turns true when it is sent to a worker (read from the pool's events, without the GIL).
    /// `on_progress(json)`, if given, gets each progress value the job reports, and
    /// `on_event(name, json)` each event it emits, in order and all before `on_done`.
    #[pyo3(signature = (job, params, opts, on_done, track_start=false, on_progress=None, on_event=None))]
    #[allow(clippy::too_many_arguments)]
    fn submit(
        &self,
        job: String,
        params: &str,
        opts: &str,
        on_done: Py<PyAny>,
        track_start: bool,
        on_progress: Option<Py<PyAny>>,
        on_event: Option<Py<PyAny>>,
    ) -> PyResult<NativeRun> {
        let params: Value = parse("params", params)?;
        let o: RunOpts = parse("run options", opts)?;
        let mut ro = RunOptions::default();
        ro.timeout = o.timeout_ms.map(ms);
        ro.max_attempts = o.attempts.map(|n| n.max(1));
        ro.key = o.key;
        ro.worker = o.worker;
        if track_start || on_progress.is_some() || on_event.is_some() {
            ro = ro.with_events();
        }
        let run = NativeRun::new();
        let (slot, track) = (Arc::clone(&run.slot), Arc::clone(&run.track));
        let on_progress = on_progress.map(Arc::new);
        let on_event = on_event.map(Arc::new);
        let pool = self.pool.clone();
        runtime().spawn(async move {
            let mut handle = match pool.run_with(&job, params, ro).await {
                Ok(h) => h,
                Err(e) => {
                    *lock(&slot) = Slot::Done;
                    call_back(on_done, refusal(&e));
                    return;
                }
            };
            Slot::accept(&slot, &handle);
            let watch = handle.events().map(|mut rx| {
                tokio::spawn(async move {
                    loop {
                        let ev = match rx.recv().await {
                            Ok(ev) => ev,
                            Err(broadcast::error::RecvError::Lagged(n)) => {
                                crate::deliver::warn_lost(n);
                                continue;
                            }
                            Err(broadcast::error::RecvError::Closed) => break,
                        };
                        match ev {
                            JobEvent::Started { .. } => {
                                track.started.store(true, Ordering::Release);
                            }
                            // The credit comes back once the callback ran (backpressure).
                            JobEvent::Progress { data, credit, .. } => {
                                if let Some(f) = &on_progress {
                                    call_shared(f, (data.to_string(),), credit);
                                }
                            }
                            JobEvent::Event {
                                name, data, credit, ..
                            } => {
                                if let Some(f) = &on_event {
                                    call_shared(f, (name, data.to_string()), credit);
                                }
                            }
                            JobEvent::Finished { .. } => break,
                            _ => {}
                        }
                    }
                })
            });
            let result = handle.result().await;
            if let Some(w) = watch {
                let _ = w.await;
            }
            *lock(&slot) = Slot::Done;
            call_back(on_done, ended(&result));
        });
        Ok(run)
    }

    /// An executor call (`calls.rs`): `call` is the pickled `(fn, args, kwargs)` in base64.
    #[pyo3(signature = (call, on_done, timeout_ms=None, on_progress=None))]
    fn call(
        &self,
        call: String,
        on_done: Py<PyAny>,
        timeout_ms: Option<u64>,
        on_progress: Option<Py<PyAny>>,
    ) -> NativeRun {
        crate::calls::submit(&self.pool, call, on_done, timeout_ms.map(ms), on_progress)
    }

    /// The live workers' pids.
    fn pids(&self) -> Vec<u32> {
        self.pool.pids()
    }

    /// Jobs waiting in the queue.
    fn queued(&self, py: Python<'_>) -> PyResult<usize> {
        py.detach(|| runtime().block_on(self.pool.queued()))
            .map_err(|e| py_error(e.code(), e))
    }

    /// Sets the number of workers.
    fn resize(&self, py: Python<'_>, n: usize) -> PyResult<()> {
        py.detach(|| runtime().block_on(self.pool.resize(n)))
            .map_err(|e| py_error(e.code(), e))
    }

    /// Per-worker health as JSON (pid, state, rss, cpu, in_flight, jobs_done, …).
    fn health(&self, py: Python<'_>) -> PyResult<String> {
        let h = py
            .detach(|| runtime().block_on(self.pool.health()))
            .map_err(|e| py_error("PoolGone", e))?;
        serde_json::to_string(&h).map_err(|e| py_error("PoolGone", e))
    }

    /// Stops accepting jobs, lets running ones finish until `deadline_ms`, then kills the rest.
    fn shutdown(&self, py: Python<'_>, deadline_ms: u64) {
        py.detach(|| runtime().block_on(self.pool.shutdown(ms(deadline_ms))));
    }

    /// Kills worker `pid` (`mode`: `"soft"` or `"hard"`, see `offload_pool::KillMode`); the
    /// pool starts its replacement.
    fn kill_worker(&self, py: Python<'_>, pid: u32, mode: &str, grace_ms: u64) -> PyResult<()> {
        let mode = kill_mode(mode, grace_ms)?;
        py.detach(|| runtime().block_on(self.pool.kill_worker(pid, mode)))
            .map_err(|e| py_error(e.code(), e))
    }

    /// Kills every worker (`order`: `"parallel"` or `"sequence"`) and ends the pool; returns
    /// when no worker is left.
    fn kill_all(&self, py: Python<'_>, mode: &str, order: &str, grace_ms: u64) -> PyResult<()> {
        let mode = kill_mode(mode, grace_ms)?;
        let order = match order {
            "parallel" => KillOrder::Parallel,
            "sequence" => KillOrder::Sequence,
            other => {
                return Err(py_error(
                    "InvalidArgument",
                    format!("unknown kill order {other:?}: use \"parallel\" or \"sequence\""),
                ))
            }
        };
        py.detach(|| runtime().block_on(self.pool.kill_all(mode, order)))
            .map_err(|e| py_error(e.code(), e))
    }

    /// Kills every worker at once.
    fn kill(&self, py: Python<'_>) {
        py.detach(|| runtime().block_on(self.pool.kill()));
    }
}
