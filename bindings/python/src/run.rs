//! `NativeRun`, one run on a pool as Python holds it, and what a run's end looks like to the
//! Python layer: its JSON answers (`refusal`, `ended`), the executor call's end (`End`), where
//! the run is for `cancel` (`Slot`) and what is known of its progress (`Track`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use offload_pool::{Canceller, JobEvent, JobHandle, JobResult, PoolError};
use pyo3::prelude::*;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::handoff::{Handoff, Waited};
use crate::lock;

/// What the executor's Python side gets at the end.
pub(crate) enum End {
    Value(String),
    Raised(String, String),
    Other(String, Option<&'static str>),
}

impl End {
    /// `on_done`'s arguments: `(kind, payload, extra)`.
    pub(crate) fn into_args(self) -> (u8, String, Option<String>) {
        match self {
            End::Value(v) => (0, v, None),
            End::Raised(e, tb) => (1, e, Some(tb)),
            End::Other(json, why) => (2, json, why.map(str::to_owned)),
        }
    }
}

/// A pool's refusal as the JSON answer `{"error": {"code", "message"}}`.
pub(crate) fn refusal(e: &PoolError) -> String {
    json!({"error": {"code": e.code(), "message": e.to_string()}}).to_string()
}

/// A run's end as the JSON answer `{"id", "outcome", "attempts"}`.
pub(crate) fn ended(result: &JobResult) -> String {
    json!({"id": result.id, "outcome": result.outcome, "attempts": result.attempts}).to_string()
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
                Err(broadcast::error::TryRecvError::Lagged(n)) => crate::deliver::warn_lost(n),
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
