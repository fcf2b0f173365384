//! The executor's calls: `NativePool.call`, one pickled `(fn, args, kwargs)` run by the
//! executor's worker (`python/offload/_jobs/worker.py`), which runs the calls it was sent one at
//! a time and says when it begins one (a progress frame `"b"`).
//!
//! A call whose worker died (a signal, an exit, a kill) before it began was only waiting behind
//! the call that died: it is submitted again, at most [`MAX_RESUBMITS`] times, and its future
//! never sees the death. A call that had begun ends with the death's outcome. A call the worker
//! gave back (it waited behind a call that runs long; the worker is `busy` until that one
//! ends) is submitted again too, and runs on the first worker that is ready.
//!
//! Its timeout runs from the moment it began (the pool's own timeout would count the time it
//! waited behind another call): when it passes, the call is cancelled, the pool kills its
//! worker after the executor's cancel grace (0.25 s: the worker cannot stop a running call,
//! but drops a waiting one within it), and the answer says `timed_out`.
//!
//! The end reaches Python as `on_done(kind, payload, extra)` on the delivery thread, or as the
//! answer of `NativeRun.take_end` to a caller that waits for it (`handoff.rs`): `(0, value_b64, None)`,
//! `(1, exception_b64, traceback)` for what the call raised, or `(2, json, why)` for any other
//! end (`{"id", "outcome", "attempts"}` or a refusal `{"error"}`; `why` is `"timeout"` or
//! `None`). Progress values (`offload.progress(data)`) go to `on_progress(json)` before it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use offload_pool::{ChildPool, JobEvent, JobResult, RunOptions};
use offload_process::Outcome;
use pyo3::prelude::*;
use serde_json::{json, Value};

use crate::deliver::{call_shared, deliver};
use crate::lock;
use crate::run::{ended, refusal, End, NativeRun, Slot, Track};
use crate::runtime;

/// The error name of a call the executor's worker gave back (`REQUEUED` in `worker.py`).
const GIVEN_BACK: &str = "Requeued";

/// How many times a call that never began is submitted again after its worker died.
pub(crate) const MAX_RESUBMITS: u32 = 8;

/// The events a call's stream holds when nothing reads them as they come: `Started`, the
/// begin, `Finished`, and a few more for the pool's own retries.
const LIFECYCLE_EVENTS: usize = 16;

/// Submits an executor call; see the module's doc.
pub(crate) fn submit(
    pool: &ChildPool,
    call: String,
    on_done: Py<PyAny>,
    timeout: Option<Duration>,
    on_progress: Option<Py<PyAny>>,
) -> NativeRun {
    let run = NativeRun::new();
    let (slot, track) = (Arc::clone(&run.slot), Arc::clone(&run.track));
    let handoff = Arc::clone(&run.handoff);
    let on_progress = on_progress.map(Arc::new);
    let pool = pool.clone();
    runtime().spawn(async move {
        let params = json!({ "call": call });
        let mut resubmits = 0;
        let end = loop {
            // Without a watcher only the lifecycle is kept (started, begun, retried, finished):
            // a small stream, allocated with every call; its explicit capacity keeps it out of
            // the pool's backpressure (it is read only now and then). With one, every event
            // is read as it comes and waits for it.
            let opts = if timeout.is_none() && on_progress.is_none() {
                RunOptions::default().with_events_capacity(LIFECYCLE_EVENTS)
            } else {
                RunOptions::default().with_events()
            };
            let mut handle = match pool.run_with("call", params.clone(), opts).await {
                Ok(h) => h,
                Err(e) => break End::Other(refusal(&e), None),
            };
            Slot::accept(&slot, &handle);
            *lock(&track.events) = handle.events();
            track.began.store(false, Ordering::Release);
            let mut progress = |ev: JobEvent| {
                if let JobEvent::Progress {
                    data: Value::Array(mut a),
                    credit,
                    ..
                } = ev
                {
                    if let (Some(f), 2) = (&on_progress, a.len()) {
                        call_shared(f, (a.swap_remove(1).to_string(),), credit);
                    }
                }
            };
            let (result, timed_out) = if timeout.is_none() && on_progress.is_none() {
                (handle.result().await, false)
            } else {
                watch(handle, &track, timeout, &mut progress).await
            };
            track.drain(&mut progress);
            if timed_out {
                break End::Other(ended(&result), Some("timeout"));
            }
            let began = track.began.load(Ordering::Acquire);
            if !began && died(&result) && resubmits < MAX_RESUBMITS && !Slot::cancelled(&slot) {
                resubmits += 1;
                continue;
            }
            if !began && given_back(&result) && !Slot::cancelled(&slot) {
                continue; // it waited behind a long call: to the first worker that is ready
            }
            break answer(&result);
        };
        *lock(&slot) = Slot::Done;
        // A caller waiting in `take_end` settles the future itself (`handoff.rs`), unless
        // progress values were queued to the delivery thread: they run before the end.
        let end = if on_progress.is_some() {
            handoff.pass();
            Some(end)
        } else {
            handoff.offer(end)
        };
        if let Some(end) = end {
            deliver(Box::new(move |py| {
                on_done.call1(py, end.into_args()).map(drop)
            }));
        }
    });
    run
}

/// Waits for the run's end while reading its events as they come: progress is delivered at
/// once, and the timeout starts when the call begins. Returns the end and whether the timeout
/// cancelled it; the events left are read into `track` before it returns.
async fn watch(
    handle: offload_pool::JobHandle,
    track: &Track,
    timeout: Option<Duration>,
    progress: &mut impl FnMut(JobEvent),
) -> (JobResult, bool) {
    let canceller = handle.canceller();
    let result = handle.result();
    tokio::pin!(result);
    // This task owns the receiver meanwhile (`started()` reads the atomics it sets).
    let mut rx = lock(&track.events).take();
    let mut deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    let mut timed_out = false;
    let result = loop {
        let next = async {
            match rx.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = &mut result => break r,
            ev = next => match ev {
                Ok(ev) => {
                    track.note(ev, progress);
                    if deadline.is_none() && track.began.load(Ordering::Acquire) {
                        if let Some(t) = timeout {
                            deadline = Some(Box::pin(tokio::time::sleep(t)));
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => crate::deliver::warn_lost(n),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => rx = None,
            },
            () = async { deadline.as_mut().expect("guarded").await }, if deadline.is_some() && !timed_out => {
                timed_out = true;
                canceller.cancel();
            }
        }
    };
    *lock(&track.events) = rx;
    (result, timed_out)
}

/// Whether the worker gave the call back without beginning it (the `Requeued` answer of
/// `_jobs/worker.py`: it waited behind a call that runs long).
fn given_back(result: &JobResult) -> bool {
    matches!(
        &result.outcome,
        Outcome::Failed { name, .. } | Outcome::FailedNoRetry { name, .. } if name == GIVEN_BACK
    )
}

/// Whether the run ended because its worker went away (not by its own answer).
fn died(result: &JobResult) -> bool {
    matches!(
        result.outcome,
        Outcome::Crashed { .. }
            | Outcome::Exited { .. }
            | Outcome::Killed { .. }
            | Outcome::ResourceLimit { .. }
    )
}

/// The end of a run that was not resubmitted.
fn answer(result: &JobResult) -> End {
    if let Outcome::Succeeded { value } = &result.outcome {
        let field = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        if let Some(v) = field("v") {
            return End::Value(v);
        }
        if let Some(e) = field("e") {
            return End::Raised(e, field("tb").unwrap_or_default());
        }
    }
    End::Other(ended(result), None)
}
