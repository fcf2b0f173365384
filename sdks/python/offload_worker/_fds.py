"""Descriptors passed with a run (docs/protocol.md §9).

The supervisor sends each one in a NODE_HANDLE frame with the descriptor attached
(SCM_RIGHTS); the reader keeps what arrives with its reads, each NODE_HANDLE frame takes the
oldest, and the runner answers NODE_HANDLE_ACK (kept) or NODE_HANDLE_NACK (refused, closed).
They wait here until the run that takes them (``fds: n``) or its cancel. Bounded: at most
MAX_PENDING held at once.
"""

import fcntl
import os
import socket
import threading

MAX_PENDING = 64
ACK = b'{"cmd":"NODE_HANDLE_ACK"}\n'
NACK = b'{"cmd":"NODE_HANDLE_NACK"}\n'
_SOCKET_KINDS = {"tcp", "tcp-listener", "unix", "unix-listener", "udp4", "udp6", "socket"}


def wrap(fd, kind):
    """A socket.socket for the socket kinds, else an unbuffered file object opened with the
    descriptor's own access mode. The object owns the descriptor (closing it closes that)."""
    if kind in _SOCKET_KINDS:
        return socket.socket(fileno=fd)
    acc = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    mode = {os.O_RDONLY: "rb", os.O_WRONLY: "wb"}.get(acc, "r+b")
    return os.fdopen(fd, mode, buffering=0)


def close_all(objs):
    for o in objs:
        try:
            o.close()
        except OSError:
            pass


class PendingFds:
    def __init__(self):
        self._lock = threading.Lock()
        self._by_run = {}  # run id -> [wrapped descriptor, ...] in order
        self._count = 0

    def offer(self, msg, fd):
        """Keep ``fd`` (an int, or None if none came) for ``msg``'s run; False: refuse it."""
        if fd is None:
            return False
        ok = False
        if isinstance(msg, dict) and msg.get("type") == "fd" and isinstance(msg.get("id"), str):
            with self._lock:
                have = self._by_run.get(msg["id"], [])
                if self._count < MAX_PENDING and msg.get("index") == len(have):
                    try:
                        have.append(wrap(fd, msg.get("kind")))
                        self._by_run[msg["id"]] = have
                        self._count += 1
                        ok = True
                    except OSError:
                        ok = False
        if not ok:
            try:
                os.close(fd)
            except OSError:
                pass
        return ok

    def take(self, run_id, n):
        """The ``n`` descriptors of the run; ValueError (after closing them) if they are not
        all there."""
        with self._lock:
            got = self._by_run.pop(run_id, [])
            self._count -= len(got)
        if len(got) != n:
            close_all(got)
            raise ValueError("the run says %d descriptors, %d arrived for it" % (n, len(got)))
        return got

    def forget(self, run_id):
        with self._lock:
            got = self._by_run.pop(run_id, [])
            self._count -= len(got)
        close_all(got)
