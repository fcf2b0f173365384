//! Answers handed to JavaScript straight from a watch's callback (`host_poll.rs`): when a
//! worker's channel is read on the JavaScript thread and its answers complete there, their
//! results go to the pool's JavaScript callback in the same turn of the event loop, through
//! `napi_make_callback` (which runs the promise reactions after it), instead of a `"drain"`
//! through the threadsafe function (one more turn of the loop and an `eventfd` write and read).
//!
//! A pool's JavaScript layer registers its callback once started (`directResults`); until
//! then, and for results completed on another thread, `Done` signals `"drain"` as before.

#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::ptr::null_mut;
use std::sync::Arc;

use napi::sys;

use crate::runs::{Done, Slots};

thread_local! {
    /// The pools' callbacks, by poll key (registered on this thread).
    static CALLBACKS: RefCell<HashMap<u32, Callback>> = RefCell::new(HashMap::new());
}

/// A pool's JavaScript callback, and where its results wait.
struct Callback {
    env: sys::napi_env,
    func: sys::napi_ref,
    context: sys::napi_async_context,
    done: Arc<Done>,
    slots: Slots,
}

/// Runs `read` as a watch's read, then delivers what it gathered for pool `key` (whose
/// results wait in `done`).
pub(crate) fn read_then_deliver<R>(key: u32, done: &Done, read: impl FnOnce() -> R) -> R {
    let (out, gathered) = crate::runs::as_watch(read);
    if gathered {
        deliver(key, done);
    }
    out
}

/// Delivers the results of pool `key` to its callback, or signals `"drain"` without one.
fn deliver(key: u32, done: &Done) {
    let call = CALLBACKS.with(|c| {
        c.borrow()
            .get(&key)
            .map(|cb| (cb.env, cb.func, cb.context, cb.done.take(&cb.slots)))
    });
    match call {
        // SAFETY: on the thread that registered the callback, whose environment is alive
        // (callbacks are removed at its teardown and when the pool is dropped).
        Some((env, func, context, json)) => unsafe { call_js(env, func, context, &json) },
        // No callback on this thread (not registered yet): `"drain"`, as from any thread.
        None => done.signal(),
    }
}

/// Calls `func(json)` as the event loop calls JavaScript: in a handle scope, through
/// `napi_make_callback` (the microtasks and `nextTick`s run after it); an exception thrown by
/// the callback goes to `uncaughtException`, as for any callback.
unsafe fn call_js(
    env: sys::napi_env,
    func: sys::napi_ref,
    context: sys::napi_async_context,
    json: &str,
) {
    let mut scope = null_mut();
    if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
        return;
    }
    let mut f = null_mut();
    let mut arg = null_mut();
    let mut recv = null_mut();
    let mut result = null_mut();
    let ready = sys::napi_get_reference_value(env, func, &mut f) == sys::Status::napi_ok
        && !f.is_null()
        && sys::napi_create_string_utf8(
            env,
            json.as_ptr().cast(),
            isize::try_from(json.len()).unwrap_or(isize::MAX),
            &mut arg,
        ) == sys::Status::napi_ok
        && sys::napi_get_global(env, &mut recv) == sys::Status::napi_ok;
    if ready {
        let status = sys::napi_make_callback(env, context, recv, f, 1, &arg, &mut result);
        if status == sys::Status::napi_pending_exception {
            let mut e = null_mut();
            if sys::napi_get_and_clear_last_exception(env, &mut e) == sys::Status::napi_ok {
                sys::napi_fatal_exception(env, e);
            }
        }
    }
    sys::napi_close_handle_scope(env, scope);
}

/// Registers pool `key`'s callback on this thread.
///
/// # Safety
/// `env` is this thread's environment and `func` a function value of it, in a call from
/// JavaScript.
pub(crate) unsafe fn register(
    env: sys::napi_env,
    func: sys::napi_value,
    key: u32,
    done: Arc<Done>,
    slots: Slots,
) -> napi::Result<()> {
    let mut fref = null_mut();
    let mut name = null_mut();
    let mut context = null_mut();
    let label = "offload.results";
    let ok = sys::napi_create_reference(env, func, 1, &mut fref) == sys::Status::napi_ok
        && sys::napi_create_string_utf8(
            env,
            label.as_ptr().cast(),
            isize::try_from(label.len()).unwrap_or(0),
            &mut name,
        ) == sys::Status::napi_ok
        && sys::napi_async_init(env, null_mut(), name, &mut context) == sys::Status::napi_ok;
    if !ok {
        if !fref.is_null() {
            sys::napi_delete_reference(env, fref);
        }
        return Err(crate::js_error(
            "Internal",
            "cannot keep the results callback",
        ));
    }
    let old = CALLBACKS.with(|c| {
        c.borrow_mut().insert(
            key,
            Callback {
                env,
                func: fref,
                context,
                done,
                slots,
            },
        )
    });
    if let Some(old) = old {
        release(&old);
    }
    Ok(())
}

/// Forgets pool `key`'s callback (its pool is dropped, on its thread).
pub(crate) fn unregister(key: u32) {
    let old = CALLBACKS
        .try_with(|c| c.borrow_mut().remove(&key))
        .ok()
        .flatten();
    if let Some(old) = old {
        release(&old);
    }
}

/// This thread's environment ends: its callbacks are forgotten (the references die with it).
pub(crate) fn forget_thread() {
    let _ = CALLBACKS.try_with(|c| c.borrow_mut().clear());
}

fn release(cb: &Callback) {
    // SAFETY: made by `register` in this environment, released once.
    unsafe {
        sys::napi_async_destroy(cb.env, cb.context);
        sys::napi_delete_reference(cb.env, cb.func);
    }
}
