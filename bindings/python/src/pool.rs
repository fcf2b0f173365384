//! `NativePool`: `offload_pool::ChildPool` for Python, and `NativeRun`, one run on it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use offload_pool::{
    Canceller, ChildPool, HostPoolOptions, JobEvent, JobHandle, JobResult, KillMode, KillOrder,
    PoolError, RunOptions, StartError, WorkerKind,
};
use pyo3::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};

use tokio::sync::broadcast;

use crate::calls::End;
use crate::deliver::{call_back, call_shared};
use crate::handoff::{Handoff, Waited};
use crate::{ms, parse, py_error, runtime};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RunOpts {
    timeout_ms: Option<u64>,
    attempts: Option<u32>,
    key: Option<String>,
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

/// The stable code of a pool refusal.
pub(crate) fn pool_error_code(e: &PoolError) -> &'static str {
    e.code()
}

/// A pool's refusal as the JSON answer `{"error": {"code", "message"}}`.
pub(crate) fn refusal(e: &PoolError) -> String {
    json!({"error": {"code": pool_error_code(e), "message": e.to_string()}}).to_string()
}

/// A run's end as the JSON answer `{"id", "outcome", "attempts"}`.
pub(crate) fn ended(result: &JobResult) -> String {
    json!({"id": result.id, "outcome": result.outcome, "attempts": result.attempts}).to_string()
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a run is, for `cancel`.
pub(crate) enum Slot {
    /// Not yet accepted by the pool; `true` once cancelled.
    Pending(bool),
    Running(Canceller),
    Done,
}

impl Slot {
    /// Records the pool's handle of an accepted run, cancelling it if `cancel()` came first.
    pub(crate) fn accept(slot: &Mutex<Slot>, handle: &JobHandle) {
        let mut s = lock(slot);
        if matches!(*s, Slot::Pending(true)) {
            handle.cancel();
        }
        *s = Slot::Running(handle.canceller());
    }

    /// Whether `cancel()` was called on the run.
    pub(crate) fn cancelled(slot: &Mutex<Slot>) -> bool {
        matches!(*lock(slot), Slot::Pending(true))
    }
}

/// The progress value the executor's worker sends when it begins a call (`calls.rs`).
pub(crate) const BEGUN: &str = "b";

/// What is known of a run's progress through the pool, read without the GIL.
#[derive(Default)]
pub(crate) struct Track {
    /// Sent to a worker.
    pub(crate) started: AtomicBool,
    /// Begun by the executor's worker (its progress value `"b"`, `calls.rs`).
    pub(crate) began: AtomicBool,
    /// The run's events not read yet (an executor call without a timeout or progress
    /// callback: nothing waits on them, `started()` and the run's end read them).
    pub(crate) events: Mutex<Option<broadcast::Receiver<JobEvent>>>,
}

impl Track {
    /// Reads the events queued so far: notes `Started` and the executor's begin, hands the
    /// others to `other`.
    pub(crate) fn drain(&self, mut other: impl FnMut(JobEvent)) {
        let mut rx = lock(&self.events);
        let Some(rx) = rx.as_mut() else {
            return;
        };
        loop {
            match rx.try_recv() {
                Ok(ev) => self.note(ev, &mut other),
                Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    }

    /// Notes `Started` and the executor's begin, hands the other events to `other`.
    pub(crate) fn note(&self, ev: JobEvent, other: &mut impl FnMut(JobEvent)) {
        match ev {
            JobEvent::Started { .. } => self.started.store(true, Ordering::Release),
            JobEvent::Progress {
                data: Value::String(s),
                ..
            } if s == BEGUN => {
                self.began.store(true, Ordering::Release);
            }
            ev => other(ev),
        }
    }
}

/// One run on a pool: `cancel()` ends it (a queued run at once; a running one gets `cancel`,
/// then its worker is killed after the pool's cancel grace).
#[pyclass(module = "offload._native", frozen)]
pub(crate) struct NativeRun {
    pub(crate) slot: Arc<Mutex<Slot>>,
    pub(crate) track: Arc<Track>,
    /// An executor call's end, for a caller waiting in `take_end` (`handoff.rs`).
    pub(crate) handoff: Arc<Handoff<End>>,
}

impl NativeRun {
    pub(crate) fn new() -> Self {
        Self {
            slot: Arc::new(Mutex::new(Slot::Pending(false))),
            track: Arc::new(Track::default()),
            handoff: Arc::new(Handoff::default()),
        }
    }
}

/// How long `take_end` waits without the GIL before it checks for signals (Ctrl-C).
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

#[pymethods]
impl NativeRun {
    /// Cancels the run; a no-op once it ended.
    fn cancel(&self) {
        let mut slot = lock(&self.slot);
        match &mut *slot {
            Slot::Pending(c) => *c = true,
            Slot::Running(c) => c.cancel(),
            Slot::Done => {}
        }
    }

    /// Whether the run was sent to a worker (known only when submitted with `track_start`, and
    /// for executor calls).
    fn started(&self) -> bool {
        if !self.track.started.load(Ordering::Acquire) {
            self.track.drain(|_| {});
        }
        self.track.started.load(Ordering::Acquire)
    }

    /// An executor call's end `(kind, payload, extra)`, as `on_done` would get it, when it
    /// comes within `timeout` seconds (`None`: no limit) and no other caller or the delivery
    /// thread has it: the caller then settles the future itself. `None` otherwise. Waits
    /// without the GIL; a signal handler that raises (Ctrl-C) ends the wait.
    #[pyo3(signature = (timeout=None))]
    fn take_end(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
    ) -> PyResult<Option<(u8, String, Option<String>)>> {
        let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
        loop {
            let slice = deadline.map_or(SIGNAL_CHECK, |d| {
                d.saturating_duration_since(Instant::now())
                    .min(SIGNAL_CHECK)
            });
            match py.detach(|| self.handoff.wait(slice)) {
                Waited::End(end) => return Ok(Some(end.into_args())),
                Waited::Elsewhere => return Ok(None),
                Waited::TimedOut => {}
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
        }
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
    #[new]
    fn new(py: Python<'_>, config: &str) -> PyResult<Self> {
        let config = parse::<HostPoolOptions>("pool options", config)?
            .into_config(WorkerKind::Python)
            .map_err(|e| py_error("InvalidArgument", e))?;
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
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(broadcast::error::RecvError::Closed) => break,
                        };
                        match ev {
                            JobEvent::Started { .. } => {
                                track.started.store(true, Ordering::Release);
                            }
                            JobEvent::Progress { data, .. } => {
                                if let Some(f) = &on_progress {
                                    call_shared(f, (data.to_string(),));
                                }
                            }
                            JobEvent::Event { name, data, .. } => {
                                if let Some(f) = &on_event {
                                    call_shared(f, (name, data.to_string()));
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
            .map_err(|e| py_error("PoolGone", e))
    }

    /// Sets the number of workers.
    fn resize(&self, py: Python<'_>, n: usize) -> PyResult<()> {
        py.detach(|| runtime().block_on(self.pool.resize(n)))
            .map_err(|e| py_error("PoolGone", e))
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
            .map_err(|e| py_error(pool_error_code(&e), e))
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
            .map_err(|e| py_error(pool_error_code(&e), e))
    }

    /// Kills every worker at once.
    fn kill(&self, py: Python<'_>) {
        py.detach(|| runtime().block_on(self.pool.kill()));
    }
}
