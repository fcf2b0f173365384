//! offload for Python: the native module `offload._native` behind `bindings/python`.
//!
//! The Python package (`bindings/python/python/offload/`) is the public API; this crate is its
//! engine and speaks JSON strings with it, so every value crossing the boundary went through
//! `json.dumps` (params that are not JSON are refused in Python, naming the job). The module
//! owns one multi-threaded tokio runtime; processes are spawned by `offload-process`'s
//! long-lived spawner thread, so `PR_SET_PDEATHSIG` and the lifeline reaper hold for the life
//! of the Python process.
//!
//! - `pool.rs`: `NativePool` over `offload_pool::ChildPool`, its runs as `NativeRun`;
//! - `calls.rs`: the executor's calls (`NativePool.call`), resubmitted when their worker died
//!   before they began;
//! - `child.rs`: `NativeChildJob` over `offload_process::ChildJob` (one fresh process a run);
//! - `deliver.rs`: the thread that runs callbacks in Python, in batches;
//! - `handoff.rs`: an executor call's end handed straight to a caller waiting for it.
//!
//! No call holds the GIL while it waits: blocking calls detach from the interpreter, and a
//! run's end reaches Python through its `on_done` callback, queued to the delivery thread
//! (`deliver.rs`; nothing runs once the interpreter is shutting down), never called from a
//! runtime thread. Errors raised here carry a
//! message `"[Code] text"`; the Python layer turns the code into the matching exception class.

// pyo3's macros expand to FFI glue (`unsafe` blocks): this crate has no hand-written unsafe.
#![allow(unsafe_code)]

mod calls;
mod child;
mod deliver;
mod handoff;
mod pool;
mod run;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// The runtime every pool and process of this Python process runs on.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("offload-rt")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("offload: cannot start the tokio runtime: {e}"))
    })
}

/// An error for Python whose message starts with `[code]`.
pub(crate) fn py_error(code: &str, message: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(format!("[{code}] {message}"))
}

/// Parses a JSON string the Python layer produced.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> PyResult<T> {
    serde_json::from_str(json).map_err(|e| py_error("InvalidArgument", format!("{what}: {e}")))
}

/// Locks `m`, taking the data of a poisoned lock as it is (a panic elsewhere must not make
/// every later call panic).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Milliseconds to a duration.
pub(crate) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// A signal by name (`SIGTERM`, `SIGINT`, `SIGKILL`, `SIGHUP`, `SIGQUIT`, `SIGUSR1`, `SIGUSR2`).
pub(crate) fn signal_number(name: &str) -> PyResult<i32> {
    offload_pool::signal_by_name(name).map_err(|e| py_error("InvalidArgument", e.message))
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("MAX_WORKERS", offload_pool::MAX_WORKERS)?;
    m.add_class::<pool::NativePool>()?;
    m.add_class::<run::NativeRun>()?;
    m.add_class::<child::NativeChildJob>()?;
    m.add_class::<child::NativeProcess>()?;
    Ok(())
}
