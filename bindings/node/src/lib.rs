//! offload for Node.js and Electron: the native addon behind `bindings/node`.
//!
//! The JavaScript layer (`bindings/node/index.js`, `lib/*.js`) is the public API; this crate is
//! its engine and speaks JSON strings with it, so that every value crossing the boundary was
//! serialised by `JSON.stringify` (a param that is not JSON is refused in JavaScript, naming the
//! job). The addon embeds napi-rs's tokio runtime; processes are spawned by `offload-process`'s
//! long-lived spawner thread, so `PR_SET_PDEATHSIG` holds for the life of the Node process.
//!
//! - [`pool`]: `NativePool` over `offload_pool::ChildPool` (its `submit_many` hot path in
//!   `runs`);
//! - [`child`]: `NativeChildJob` / `NativeProcess` over `offload_process::ChildJob`;
//! - [`balance`]: `NativeBalancer` over `offload_balance::LoadBalancer`;
//! - [`schedule`]: `NativeSchedule` over `offload_schedule::Scheduler` on a pool;
//! - [`fds`]: descriptors passed with a run (`holdFds` / `dropFds`).
//!
//! Errors thrown to JavaScript carry a message `"[Code] text"`; the JavaScript layer turns the
//! code into the matching `OffloadError` subclass.

// napi-rs's macros expand to FFI glue (`unsafe` blocks); the only hand-written unsafe is the
// descriptor copy in `fds.rs`.
#![allow(unsafe_code)]

pub mod balance;
pub mod child;
pub mod fds;
pub mod host_poll;
mod js_answers;
pub mod pool;
mod runs;
pub mod schedule;

use napi::bindgen_prelude::{ToNapiValue, TypeName, Unknown};
use napi::sys;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Error, Status};
use offload_process::Credit;

/// The most workers one pool may have (`offload_pool::MAX_WORKERS`): `max`, `min` and
/// `resize(n)` above it are refused in JavaScript, naming it.
#[napi_derive::napi]
pub const MAX_WORKERS: u32 = {
    assert!(offload_pool::MAX_WORKERS <= u32::MAX as usize);
    offload_pool::MAX_WORKERS as u32
};

/// The most affinity keys one pool keeps bound (`offload_pool::MAX_BINDINGS`): past it the
/// least recently used without a job in flight are forgotten (bound again at their next job).
/// ee-core's `boundMap` keeps as many.
#[napi_derive::napi]
pub const MAX_BINDINGS: u32 = {
    assert!(offload_pool::MAX_BINDINGS <= u32::MAX as usize);
    offload_pool::MAX_BINDINGS as u32
};

/// The longest affinity key (`key` of a run, ee-core's bound id), in bytes of UTF-8
/// (`offload_pool::MAX_KEY_BYTES`).
#[napi_derive::napi]
pub const MAX_KEY_BYTES: u32 = {
    assert!(offload_pool::MAX_KEY_BYTES <= u32::MAX as usize);
    offload_pool::MAX_KEY_BYTES as u32
};

/// A JavaScript callback taking one JSON string, callable from any thread; weak, so it never
/// keeps Node's event loop alive by itself.
pub(crate) type EventFn =
    ThreadsafeFunction<Payload, Unknown<'static>, Payload, Status, false, true>;

/// What goes to a JavaScript event callback: one JSON string for JavaScript, and the credit of the event it
/// carries (backpressure, `offload_process::EventFlow`), returned once JavaScript has the
/// string: a worker is read on only as fast as JavaScript takes its events.
pub struct Payload {
    json: String,
    credit: Credit,
}

impl ToNapiValue for Payload {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let Payload { json, credit } = val;
        // SAFETY: called by napi on the JavaScript thread with its environment.
        let value = unsafe { String::to_napi_value(env, json) };
        drop(credit);
        value
    }
}

impl TypeName for Payload {
    fn type_name() -> &'static str {
        "String"
    }

    fn value_type() -> napi::ValueType {
        napi::ValueType::String
    }
}

/// Every event's pool and process streams in the addon are read at once, so backpressure is
/// on: at most this many events of one worker process wait for JavaScript.
pub(crate) const EVENTS_IN_FLIGHT: usize = offload_process::MAX_EVENT_BACKPRESSURE;

/// Queues `json` for the callback (non-blocking; the queue is bounded by the events' credits,
/// and holds at most a few lifecycle messages per run besides).
pub(crate) fn emit(f: &EventFn, json: String) {
    emit_with(f, json, Credit::default());
}

/// [`emit`] with the credit of the event `json` carries.
pub(crate) fn emit_with(f: &EventFn, json: String, credit: Credit) {
    let _ = f.call(
        Payload { json, credit },
        ThreadsafeFunctionCallMode::NonBlocking,
    );
}

/// The credit a process event carries (none for most).
pub(crate) fn process_credit(ev: &offload_process::ProcessEvent) -> Credit {
    use offload_process::ProcessEvent as E;
    match ev {
        E::Progress { credit, .. } | E::Event { credit, .. } | E::Log { credit, .. } => {
            credit.clone()
        }
        _ => Credit::default(),
    }
}

/// The credit a pool run's event carries (none for its lifecycle events).
pub(crate) fn job_credit(ev: &offload_pool::JobEvent) -> Credit {
    use offload_pool::JobEvent as E;
    match ev {
        E::Progress { credit, .. } | E::Event { credit, .. } => credit.clone(),
        _ => Credit::default(),
    }
}

/// An error for JavaScript whose message starts with `[code]`.
pub(crate) fn js_error(code: &str, message: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, format!("[{code}] {message}"))
}

/// Parses a JSON string the JavaScript layer produced.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> napi::Result<T> {
    serde_json::from_str(json).map_err(|e| js_error("InvalidArgument", format!("{what}: {e}")))
}

/// A signal by name (`SIGTERM`, `SIGINT`, `SIGKILL`, `SIGHUP`, `SIGQUIT`, `SIGUSR1`, `SIGUSR2`).
pub(crate) fn signal_number(name: &str) -> napi::Result<i32> {
    offload_pool::signal_by_name(name).map_err(|e| js_error("InvalidArgument", e.message))
}

/// Milliseconds to a duration.
pub(crate) fn ms(v: u64) -> std::time::Duration {
    std::time::Duration::from_millis(v)
}

/// The addon's tokio runtime: one worker thread by default (`OFFLOAD_NODE_THREADS=<n>` for more).
/// The runtime only moves frames between JavaScript and the worker processes; with more than
/// one thread every wake-up also wakes an idle sibling to look for work, which costs a round
/// trip (one job in flight) 6.5-7.4 context switches in the Node process instead of 4-5 and
/// ~25 % more CPU (`bench/peers/README.md`, the addon row). Registered before napi starts its
/// runtime; napi falls back to its default runtime if this one was shut down and a new Node
/// environment starts (an Electron renderer reload).
#[napi_derive::module_init]
fn init_runtime() {
    let threads = std::env::var("OFFLOAD_NODE_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    if let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("offload-node")
        .enable_all()
        .build()
    {
        napi::bindgen_prelude::create_custom_tokio_runtime(rt);
    }
}
