//! The workers' channels of a pool read on the JavaScript thread (`offload_pool::HostReader`,
//! `docs/design/node-answers-on-the-js-thread.md`): each channel is watched by a libuv
//! `uv_poll_t` on the loop of the thread that started the pool, whose callback reads it and
//! completes the answers there. A round trip then wakes the worker and the JavaScript thread,
//! as `child_process.fork` does, instead of also waking the addon's runtime thread twice.
//!
//! - A new worker's channel is queued under its pool's key, and a threadsafe function made on
//!   the pool's thread (when `startPool` was called) starts its watch on that thread's loop.
//! - The watch is unreferenced (it never keeps Node running by itself) and closed when the
//!   channel says it is closed (the worker is gone), or when the JavaScript environment is torn
//!   down (a `worker_threads` worker ending): libuv must not close a loop with our handles open.
//! - libuv's functions are looked up in the running process (Node and Electron export them);
//!   where they are missing, pools read their channels on the runtime as before.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::{c_int, c_void, CStr};
use std::os::fd::{AsFd, AsRawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use napi::{sys, Env};
use offload_pool::HostReader;
use offload_process::{HostChannel, HostRead};

use crate::js_error;
use crate::runs::{lock, Done};

/// libuv's `UV_POLL` handle type and `UV_READABLE` event (stable since libuv 1.0).
const UV_POLL: c_int = 8;
const UV_READABLE: c_int = 1;

type PollCb = unsafe extern "C" fn(*mut c_void, c_int, c_int);
type CloseCb = unsafe extern "C" fn(*mut c_void);

/// The libuv functions a watch needs, from the running process.
struct Uv {
    handle_size: unsafe extern "C" fn(c_int) -> usize,
    poll_init: unsafe extern "C" fn(*mut c_void, *mut c_void, c_int) -> c_int,
    poll_start: unsafe extern "C" fn(*mut c_void, c_int, PollCb) -> c_int,
    poll_stop: unsafe extern "C" fn(*mut c_void) -> c_int,
    close: unsafe extern "C" fn(*mut c_void, CloseCb),
    unref: unsafe extern "C" fn(*mut c_void),
}

fn symbol(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: a lookup in the process's global symbols; the name is NUL-terminated.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

/// libuv, if the process exports it.
fn uv() -> Option<&'static Uv> {
    static UV: OnceLock<Option<Uv>> = OnceLock::new();
    UV.get_or_init(|| {
        // SAFETY: each symbol is libuv's function of that name, with the C signature written
        // in `Uv` (libuv's public API, unchanged since 1.0).
        unsafe {
            Some(Uv {
                handle_size: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(c_int) -> usize>(
                    symbol(c"uv_handle_size")?,
                ),
                poll_init: std::mem::transmute::<
                    *mut c_void,
                    unsafe extern "C" fn(*mut c_void, *mut c_void, c_int) -> c_int,
                >(symbol(c"uv_poll_init")?),
                poll_start: std::mem::transmute::<
                    *mut c_void,
                    unsafe extern "C" fn(*mut c_void, c_int, PollCb) -> c_int,
                >(symbol(c"uv_poll_start")?),
                poll_stop: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(*mut c_void) -> c_int>(
                    symbol(c"uv_poll_stop")?,
                ),
                close: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(*mut c_void, CloseCb)>(
                    symbol(c"uv_close")?,
                ),
                unref: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(*mut c_void)>(
                    symbol(c"uv_unref")?,
                ),
            })
        }
    })
    .as_ref()
}

/// Channels given by the pools and not watched yet, by pool key.
fn pending() -> &'static Mutex<HashMap<u32, Vec<Pending>>> {
    static PENDING: OnceLock<Mutex<HashMap<u32, Vec<Pending>>>> = OnceLock::new();
    PENDING.get_or_init(Default::default)
}

/// A new key for a pool's channels.
pub(crate) fn next_key() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Wakes the pool's JavaScript thread to watch new channels: a threadsafe function without a
/// JavaScript function (its callback is [`on_new_channels`]), unreferenced; released with the
/// pool. Node finalizes it itself when the environment ends: `gone` (set by the finalizer,
/// under its lock) keeps the calls from touching it after that.
struct Waker {
    tsfn: sys::napi_threadsafe_function,
    gone: Arc<Mutex<bool>>,
}

// SAFETY: a threadsafe function may be called and released from any thread; `gone` guards its
// end.
unsafe impl Send for Waker {}
// SAFETY: as above.
unsafe impl Sync for Waker {}

impl Waker {
    fn wake(&self) {
        let gone = lock(&self.gone);
        if !*gone {
            // SAFETY: not finalized (checked under the finalizer's lock), not released.
            unsafe {
                sys::napi_call_threadsafe_function(
                    self.tsfn,
                    std::ptr::null_mut(),
                    sys::ThreadsafeFunctionCallMode::nonblocking,
                );
            }
        }
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        let gone = lock(&self.gone);
        if !*gone {
            // SAFETY: made by `host_reader`, not finalized, released once.
            unsafe {
                sys::napi_release_threadsafe_function(
                    self.tsfn,
                    sys::ThreadsafeFunctionReleaseMode::release,
                );
            }
        }
    }
}

/// Node finalizes the threadsafe function (released, or its environment ends).
unsafe extern "C" fn on_finalized(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: the `Arc` leaked for it by `host_reader`, taken back once.
    let gone = unsafe { Arc::from_raw(data.cast::<Mutex<bool>>()) };
    *lock(&gone) = true;
}

/// The reader of a pool whose channels this thread watches under `key` (`None` without libuv,
/// or with `OFFLOAD_NODE_HOST_READ=0`). Called on the JavaScript thread that starts the pool.
pub(crate) fn host_reader(
    env: &Env,
    key: u32,
    done: Arc<Done>,
) -> napi::Result<Option<HostReader>> {
    if std::env::var("OFFLOAD_NODE_HOST_READ").is_ok_and(|v| v.trim() == "0") || uv().is_none() {
        return Ok(None);
    }
    let raw_env = env.raw();
    let mut name = std::ptr::null_mut();
    let mut tsfn = std::ptr::null_mut();
    let label = "offload.channels";
    let gone = Arc::new(Mutex::new(false));
    let finalize_data = Arc::into_raw(Arc::clone(&gone)).cast_mut().cast::<c_void>();
    // SAFETY: on the JavaScript thread, in a call from it; the context is the key itself.
    let ok = unsafe {
        sys::napi_create_string_utf8(
            raw_env,
            label.as_ptr().cast(),
            label.len() as isize,
            &mut name,
        ) == sys::Status::napi_ok
            && sys::napi_create_threadsafe_function(
                raw_env,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                name,
                0,
                1,
                finalize_data,
                Some(on_finalized),
                key as usize as *mut c_void,
                Some(on_new_channels),
                &mut tsfn,
            ) == sys::Status::napi_ok
    };
    if !ok {
        // SAFETY: not given to Node (no threadsafe function was made): taken back here.
        drop(unsafe { Arc::from_raw(finalize_data.cast::<Mutex<bool>>()) });
        return Err(js_error(
            "Internal",
            "cannot make the channels' threadsafe function",
        ));
    }
    // SAFETY: just made, on its thread: it must not keep Node running by itself.
    unsafe { sys::napi_unref_threadsafe_function(raw_env, tsfn) };
    let waker = Waker { tsfn, gone };
    Ok(Some(HostReader(Arc::new(move |channel| {
        lock(pending())
            .entry(key)
            .or_default()
            .push((channel, Arc::clone(&done)));
        waker.wake();
    }))))
}

/// The threadsafe function's callback, on the pool's JavaScript thread: watch what came.
unsafe extern "C" fn on_new_channels(
    env: sys::napi_env,
    _js: sys::napi_value,
    context: *mut c_void,
    _data: *mut c_void,
) {
    if env.is_null() {
        // The environment is being torn down.
        return;
    }
    let key = context as usize as u32;
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // The environment of this thread, alive (not null).
        watch_pending(Env::from_raw(env), key)
    }));
}

/// Forgets the channels of a pool JavaScript no longer watches (it closed).
pub(crate) fn forget(key: u32) {
    lock(pending()).remove(&key);
}

/// A channel not watched yet, and where its pool's results wait.
type Pending = (Arc<HostChannel>, Arc<Done>);

/// What a watch's `data` points to.
struct Watch {
    channel: Arc<HostChannel>,
    /// Its pool's key, and where its results wait (`js_answers.rs`).
    key: u32,
    done: Arc<Done>,
}

thread_local! {
    /// This thread's open watches (their handles), closed at the environment's teardown.
    static OPEN: RefCell<Option<HashSet<usize>>> = const { RefCell::new(None) };
    /// The channels watched on this thread (by address), and their watches' handles.
    static WATCHED: RefCell<HashMap<usize, usize>> = RefCell::new(HashMap::new());
}

/// The watch of `channel` on this thread, if any.
fn watch_of(channel: &Arc<HostChannel>) -> Option<*mut c_void> {
    let key = Arc::as_ptr(channel) as usize;
    WATCHED.with(|w| w.borrow().get(&key).map(|&h| h as *mut c_void))
}

/// Starts watching the channels queued under `key`, on this thread's loop.
fn watch_pending(env: Env, key: u32) -> napi::Result<()> {
    let channels = lock(pending()).remove(&key).unwrap_or_default();
    if channels.is_empty() {
        return Ok(());
    }
    let (Some(uv), Ok(uv_loop)) = (uv(), env.get_uv_event_loop()) else {
        // No loop to watch them on: threads read them (never left unread).
        for (channel, _) in channels {
            read_on_a_thread(channel);
        }
        return Err(js_error("Internal", "libuv's loop is not available"));
    };
    let uv_loop = uv_loop.cast::<c_void>();
    let first = OPEN.with(|o| {
        let mut o = o.borrow_mut();
        let first = o.is_none();
        o.get_or_insert_with(HashSet::new);
        first
    });
    if first {
        env.add_env_cleanup_hook((), |()| {
            close_all();
            crate::js_answers::forget_thread();
        })?;
    }
    for (channel, done) in channels {
        // What came before the watch starts (the worker's `ready`), a channel that closed
        // meanwhile; or a channel given again once what it read may go on (backpressure,
        // `HostRead::Paused`): its answers go to JavaScript now, as from a watch.
        let read = crate::js_answers::read_then_deliver(key, &done, || channel.read_ready());
        let watched = watch_of(&channel);
        match (read, watched) {
            (HostRead::Open, Some(_)) => {}
            (HostRead::Open, None) => {
                // SAFETY: on the loop's own thread; see `watch`.
                if let Err(channel) = unsafe { watch(uv, uv_loop, channel, key, done) } {
                    // The loop refused the watch: a thread reads this channel instead.
                    read_on_a_thread(channel);
                }
            }
            // SAFETY: a handle this thread started (`WATCHED` holds only those).
            (HostRead::Paused | HostRead::Closed, Some(handle)) => unsafe { stop(handle) },
            (HostRead::Paused | HostRead::Closed, None) => {}
        }
    }
    Ok(())
}

/// Starts a watch of `channel` on `uv_loop`.
///
/// # Safety
/// On the thread that runs `uv_loop`.
unsafe fn watch(
    uv: &Uv,
    uv_loop: *mut c_void,
    channel: Arc<HostChannel>,
    key: u32,
    done: Arc<Done>,
) -> Result<(), Arc<HostChannel>> {
    let size = (uv.handle_size)(UV_POLL);
    let Ok(layout) = std::alloc::Layout::from_size_align(size.max(8), 16) else {
        return Err(channel);
    };
    let handle = std::alloc::alloc_zeroed(layout).cast::<c_void>();
    if handle.is_null() {
        return Err(channel);
    }
    let fd = channel.as_fd().as_raw_fd();
    if (uv.poll_init)(uv_loop, handle, fd) != 0 {
        std::alloc::dealloc(handle.cast(), layout);
        return Err(channel);
    }
    // `data` is the first field of every libuv handle.
    let data = Box::into_raw(Box::new(Watch {
        channel: Arc::clone(&channel),
        key,
        done,
    }));
    *handle.cast::<*mut Watch>() = data;
    if (uv.poll_start)(handle, UV_READABLE, on_readable) != 0 {
        (uv.close)(handle, on_closed);
        return Err(channel);
    }
    (uv.unref)(handle);
    OPEN.with(|o| {
        if let Some(o) = o.borrow_mut().as_mut() {
            o.insert(handle as usize);
        }
    });
    WATCHED.with(|w| {
        w.borrow_mut()
            .insert(Arc::as_ptr(&channel) as usize, handle as usize)
    });
    Ok(())
}

/// The socket is readable: read it; a closed channel ends its watch, and so does one whose
/// reads wait for JavaScript to take its events (`HostRead::Paused`: it is given again, through
/// the pool's reader, once they may go on).
unsafe extern "C" fn on_readable(handle: *mut c_void, status: c_int, _events: c_int) {
    let watch = &*(*handle.cast::<*mut Watch>());
    let read = catch_unwind(AssertUnwindSafe(|| {
        crate::js_answers::read_then_deliver(watch.key, &watch.done, || watch.channel.read_ready())
    }));
    if status < 0 || !matches!(read, Ok(HostRead::Open)) {
        stop(handle);
    }
}

/// Stops and closes a watch (once).
unsafe fn stop(handle: *mut c_void) {
    let open = OPEN.with(|o| {
        o.borrow_mut()
            .as_mut()
            .is_some_and(|o| o.remove(&(handle as usize)))
    });
    if !open {
        return;
    }
    let data = *handle.cast::<*mut Watch>();
    if !data.is_null() {
        let channel = Arc::as_ptr(&(*data).channel) as usize;
        WATCHED.with(|w| {
            let mut w = w.borrow_mut();
            if w.get(&channel) == Some(&(handle as usize)) {
                w.remove(&channel);
            }
        });
    }
    if let Some(uv) = uv() {
        (uv.poll_stop)(handle);
        (uv.close)(handle, on_closed);
    }
}

/// Frees a closed watch.
unsafe extern "C" fn on_closed(handle: *mut c_void) {
    let data = *handle.cast::<*mut Watch>();
    if !data.is_null() {
        drop(Box::from_raw(data));
    }
    if let Some(uv) = uv() {
        let size = (uv.handle_size)(UV_POLL);
        if let Ok(layout) = std::alloc::Layout::from_size_align(size.max(8), 16) {
            std::alloc::dealloc(handle.cast(), layout);
        }
    }
}

/// The environment ends: every watch of this thread closes (their channels are read by their
/// processes from now on).
fn close_all() {
    WATCHED.with(|w| w.borrow_mut().clear());
    let open = OPEN.with(|o| o.borrow_mut().take()).unwrap_or_default();
    let Some(uv) = uv() else { return };
    for handle in open {
        let handle = handle as *mut c_void;
        // SAFETY: a handle this thread started and has not closed. Its channel is let go now
        // (the loop may never run its close callback again; that only leaks the handle's
        // memory, not the channel's descriptor).
        unsafe {
            (uv.poll_stop)(handle);
            let data = handle.cast::<*mut Watch>();
            if !(*data).is_null() {
                drop(Box::from_raw(*data));
                *data = std::ptr::null_mut();
            }
            (uv.close)(handle, on_closed);
        }
    }
}

/// A channel the loop could not watch: read by a thread of its own until it closes.
fn read_on_a_thread(channel: Arc<HostChannel>) {
    tracing::warn!(
        pid = channel.pid(),
        "cannot watch a worker's channel on the JavaScript thread; a thread reads it"
    );
    let _ = std::thread::Builder::new()
        .name("offload-read".into())
        .spawn(move || loop {
            let mut p = libc::pollfd {
                fd: channel.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, a bounded timeout.
            unsafe { libc::poll(&mut p, 1, 100) };
            match channel.read_ready() {
                HostRead::Closed => break,
                // JavaScript has not taken its events yet: look again in a while.
                HostRead::Paused => std::thread::sleep(std::time::Duration::from_millis(1)),
                HostRead::Open => {}
            }
        });
}
