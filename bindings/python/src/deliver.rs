//! Delivery of callbacks to Python from one thread of its own.
//!
//! A run's end, its progress and its events reach Python as closures queued here, in order. The
//! `offload-deliver` thread waits for the first one without the GIL, then attaches to the
//! interpreter once and runs every closure already queued (at most [`BATCH`]) before it lets
//! the GIL go: a burst of completions costs one attach, and no tokio thread ever waits for the
//! GIL (a runtime thread blocked on it would stall every pool of the process). Nothing runs once
//! the interpreter is finalizing; an exception raised by a callback is printed, not lost.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, OnceLock};

use pyo3::prelude::*;

/// A callback waiting for the GIL.
pub(crate) type Delivery = Box<dyn FnOnce(Python<'_>) -> PyResult<()> + Send>;

/// Most callbacks run in one attach; the GIL is released between batches.
const BATCH: usize = 512;

fn sender() -> &'static Sender<Delivery> {
    static TX: OnceLock<Sender<Delivery>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = channel::<Delivery>();
        std::thread::Builder::new()
            .name("offload-deliver".into())
            .spawn(move || serve(&rx))
            .unwrap_or_else(|e| panic!("offload: cannot start the delivery thread: {e}"));
        tx
    })
}

fn serve(rx: &Receiver<Delivery>) {
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let _ = Python::try_attach(|py| {
            let mut n = 0;
            while let Some(f) = next.take() {
                if let Err(e) = f(py) {
                    e.print(py);
                }
                n += 1;
                if n < BATCH {
                    next = rx.try_recv().ok();
                }
            }
        });
    }
}

/// `n` progress values or events of a run were dropped on their way (the job sent them faster
/// than they were delivered, past the run's buffer): one `RuntimeWarning` per process, queued
/// in order with the callbacks.
pub(crate) fn warn_lost(n: u64) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    deliver(Box::new(move |py| {
        let text = format!(
            "offload: progress values or events of a job were dropped ({n} at this first loss, \
             the oldest): it sent them faster than they were delivered; later losses are not \
             reported"
        );
        let text = std::ffi::CString::new(text).unwrap_or_default();
        let category = py.get_type::<pyo3::exceptions::PyRuntimeWarning>();
        PyErr::warn(py, &category, &text, 1)
    }));
}

/// Queues `f` to run on the delivery thread, attached to the interpreter.
pub(crate) fn deliver(f: Delivery) {
    let _ = sender().send(f);
}

/// Queues the call `f(json)`.
pub(crate) fn call_back(f: Py<PyAny>, json: String) {
    deliver(Box::new(move |py| f.call1(py, (json,)).map(drop)));
}

/// Queues the call `f(*args)` of a callback called more than once (progress, events); the
/// event's `credit` (backpressure) is returned once the call ran.
pub(crate) fn call_shared<A>(f: &Arc<Py<PyAny>>, args: A, credit: offload_process::Credit)
where
    A: for<'py> pyo3::call::PyCallArgs<'py> + Send + 'static,
{
    let f = Arc::clone(f);
    deliver(Box::new(move |py| {
        let done = f.call1(py, args).map(drop);
        drop(credit);
        done
    }));
}
