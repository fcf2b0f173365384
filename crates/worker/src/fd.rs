//! Taking ownership of the inherited channel fd, and reading it with the descriptors a run
//! carries (`recvmsg`, `SCM_RIGHTS`): and registering it with the runtime: the crate's `unsafe` besides the watchdog's `poll`.
#![allow(unsafe_code)]

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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

/// Descriptors one read may bring: more are closed by the kernel (`MSG_CTRUNC`); the
/// supervisor sends one per frame, each acknowledged before the next.
const MAX_FDS_PER_READ: usize = 8;

/// One `recvmsg` into `buf`; descriptors that came with it (close-on-exec) go to the back of
/// `fds`. Non-blocking like the socket.
pub(crate) fn recv_with_fds(
    stream: &std::os::unix::net::UnixStream,
    buf: &mut [u8],
    fds: &mut VecDeque<OwnedFd>,
) -> io::Result<usize> {
    const INT: usize = std::mem::size_of::<libc::c_int>();
    // Aligned for `cmsghdr`; room for MAX_FDS_PER_READ descriptors.
    let mut control = [0u64; 8];
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE((MAX_FDS_PER_READ * INT) as u32) } as usize;
    debug_assert!(space <= std::mem::size_of_val(&control));
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: a zeroed msghdr is a valid empty message.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` points at `buf` and `control`, both valid for writes of the lengths
    // given, for the duration of the call.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &raw mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled `msg_controllen` bytes of `control` with well-formed
    // control messages; the CMSG_* macros walk them within that length. Each SCM_RIGHTS
    // descriptor is new in this process and owned by nobody else: ownership moves here.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let len = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                for i in 0..len / INT {
                    let fd = std::ptr::read_unaligned(data.add(i * INT).cast::<libc::c_int>());
                    fds.push_back(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    Ok(n as usize)
}

/// Registers `stream` (non-blocking) with the current tokio runtime for `interest` only.
pub(crate) fn register(
    stream: std::os::unix::net::UnixStream,
    interest: tokio::io::Interest,
) -> io::Result<tokio::io::unix::AsyncFd<std::os::unix::net::UnixStream>> {
    // SAFETY: the `AsyncFd` owns `stream`, so the descriptor stays open (and is not reused)
    // for as long as it is registered.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(stream, interest) }
        .map_err(|e| e.into_parts().1)
}
