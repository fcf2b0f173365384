//! Passing descriptors over the channel (`docs/protocol.md` §9): what kind a descriptor is,
//! and `sendmsg` with one descriptor attached by `SCM_RIGHTS`. The only `unsafe` of the
//! descriptor path; every call is a plain libc call on values owned for its duration.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use offload_protocol::FdKind;

fn sockopt_int(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of the sizes given; `fd` is borrowed,
    // so open for the call.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    if r == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What `fd` is. A descriptor that is not open is `EBADF`.
pub(crate) fn classify(fd: BorrowedFd<'_>) -> io::Result<FdKind> {
    // SAFETY: a zeroed `stat` is a valid value of a plain C struct; fstat writes into it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is valid for writes; `fd` is borrowed, so open for the call.
    if unsafe { libc::fstat(fd.as_raw_fd(), &raw mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => FdKind::File,
        libc::S_IFIFO => FdKind::Pipe,
        libc::S_IFSOCK => {
            let ty = sockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE)?;
            let domain = sockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)?;
            let listening = ty == libc::SOCK_STREAM
                && sockopt_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN)? != 0;
            match (domain, ty, listening) {
                (libc::AF_INET | libc::AF_INET6, libc::SOCK_STREAM, false) => FdKind::Tcp,
                (libc::AF_INET | libc::AF_INET6, libc::SOCK_STREAM, true) => FdKind::TcpListener,
                (libc::AF_UNIX, libc::SOCK_STREAM, false) => FdKind::Unix,
                (libc::AF_UNIX, libc::SOCK_STREAM, true) => FdKind::UnixListener,
                (libc::AF_INET, libc::SOCK_DGRAM, _) => FdKind::Udp4,
                (libc::AF_INET6, libc::SOCK_DGRAM, _) => FdKind::Udp6,
                _ => FdKind::Socket,
            }
        }
        _ => FdKind::Other,
    })
}

/// One `sendmsg` of (a prefix of) `bytes` on the stream socket `sock`, with `fd` attached
/// (`SCM_RIGHTS`; the kernel takes its own reference: the caller may close `fd` once this
/// returned a count above zero). Non-blocking like the socket: `WouldBlock` sends nothing.
pub(crate) fn send_with_fd(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fd: BorrowedFd<'_>,
) -> io::Result<usize> {
    const FD_LEN: u32 = std::mem::size_of::<libc::c_int>() as u32;
    // Room for one descriptor's control message, aligned for `cmsghdr`.
    let mut control = [0u64; 4];
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(FD_LEN) } as usize;
    debug_assert!(space <= std::mem::size_of_val(&control));
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    // SAFETY: a zeroed msghdr is a valid empty message.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` points at `control`, large enough for one header and one int (checked
    // above), so CMSG_FIRSTHDR is non-null and CMSG_DATA is in bounds for FD_LEN bytes. The
    // iovec points at `bytes`, which sendmsg only reads.
    let sent = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(FD_LEN) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd.as_raw_fd());
        libc::sendmsg(
            sock.as_raw_fd(),
            &raw const msg,
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn kinds_are_told_apart() {
        let file = tempfile::tempfile().unwrap();
        assert_eq!(classify(file.as_fd()).unwrap(), FdKind::File);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(classify(listener.as_fd()).unwrap(), FdKind::TcpListener);
        let conn = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert_eq!(classify(conn.as_fd()).unwrap(), FdKind::Tcp);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(classify(udp.as_fd()).unwrap(), FdKind::Udp4);
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(classify(a.as_fd()).unwrap(), FdKind::Unix);
        let (d, _e) = std::os::unix::net::UnixDatagram::pair().unwrap();
        assert_eq!(classify(d.as_fd()).unwrap(), FdKind::Socket);
        let (r, _w) = std::io::pipe().unwrap();
        assert_eq!(classify(r.as_fd()).unwrap(), FdKind::Pipe);
    }
}
