//! Descriptors JavaScript passes with a run (`pool.run(job, params, {fds})`, issue 17 item 1):
//! `holdFds` duplicates them on the JavaScript thread, at the call (so the caller may close its
//! own handle right after, and a descriptor number reused meanwhile can never be passed by
//! mistake), and keeps the copies under a key until the run takes them
//! (`take`, by `NativePool::run`) or JavaScript lets them go (`dropFds`, a run that never
//! reached the addon). Every copy is an `OwnedFd`: closed by the pool once passed, or when its
//! run ends without reaching a worker, or here when dropped — never leaked.
//!
//! This file holds the addon's only hand-written `unsafe`: `fcntl(F_DUPFD_CLOEXEC)` and taking
//! ownership of the descriptor it returns.

use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use napi_derive::napi;

use crate::js_error;
use crate::runs::lock;

/// Descriptors held for runs not submitted yet, by key.
fn held() -> &'static Mutex<HashMap<u32, Vec<OwnedFd>>> {
    static HELD: OnceLock<Mutex<HashMap<u32, Vec<OwnedFd>>>> = OnceLock::new();
    HELD.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The most descriptors held at once for runs not submitted yet (a caller that holds and never
/// runs would otherwise grow the table without end).
const MAX_HELD: usize = 4096;

/// A new close-on-exec copy of `fd`, or `None` when `fd` is not an open descriptor.
fn dup(fd: i32) -> Option<OwnedFd> {
    if fd < 0 {
        return None;
    }
    // SAFETY: fcntl with F_DUPFD_CLOEXEC only reads `fd`; an invalid one returns -1 (EBADF).
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if copy < 0 {
        return None;
    }
    // SAFETY: `copy` is a descriptor fcntl just created; nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// Copies `fds` (descriptor numbers: `socket._handle.fd`, `server._handle.fd` or a number) and
/// returns the key `NativePool::run` takes them by (`opts.fds`). Refuses, copying nothing, a
/// number that is not an open descriptor (`InvalidArgument`, naming its position) and more
/// than `MAX_HELD` held at once (`QueueFull`).
#[napi]
pub fn hold_fds(fds: Vec<i32>) -> napi::Result<u32> {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let mut copies = Vec::with_capacity(fds.len());
    for (index, fd) in fds.iter().enumerate() {
        match dup(*fd) {
            Some(c) => copies.push(c),
            None => {
                return Err(js_error(
                    "InvalidArgument",
                    format!("fds[{index}] ({fd}) is not an open descriptor"),
                ))
            }
        }
    }
    let mut held = lock(held());
    let count: usize = held.values().map(Vec::len).sum();
    if count + copies.len() > MAX_HELD {
        return Err(js_error(
            "QueueFull",
            format!(
                "{count} descriptors are held for runs not submitted yet; the limit is {MAX_HELD}"
            ),
        ));
    }
    let key = NEXT.fetch_add(1, Ordering::Relaxed).max(1);
    held.insert(key, copies);
    Ok(key)
}

/// Closes the copies held under `key` (a run that will not be submitted).
#[napi]
pub fn drop_fds(key: u32) {
    lock(held()).remove(&key);
}

/// The copies held under `key` (empty if none).
pub(crate) fn take(key: u32) -> Vec<OwnedFd> {
    lock(held()).remove(&key).unwrap_or_default()
}
