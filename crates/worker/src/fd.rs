//! Taking ownership of the inherited channel fd: the crate's only `unsafe`.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Takes the inherited channel fd, after checking it is open, and marks it close-on-exec so
/// that programs the job starts do not inherit the channel.
pub(crate) fn take_channel_fd(fd: RawFd) -> io::Result<std::os::unix::net::UnixStream> {
    // SAFETY: fcntl on an arbitrary fd number has no memory-safety preconditions.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::other(format!(
            "channel fd {fd} is not open: {}",
            io::Error::last_os_error()
        )));
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd is open (checked above), was inherited for exactly this purpose, and
    // nothing else in this process owns it: ownership moves into the stream.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let stream = std::os::unix::net::UnixStream::from(owned);
    // A non-socket fd fails here instead of misbehaving later.
    stream.local_addr()?;
    Ok(stream)
}
