"""A run's byte streams (docs/protocol.md §10).

The run's ``streams`` names which of its passed descriptors (sockets of an AF_UNIX socket pair
the supervisor made) are its input and output. ``ctx.input_stream()`` is a buffered binary
file to read to its end; ``ctx.output_stream()`` a binary file whose ``write`` sends it all,
waiting while the reader does not read (the kernel's socket buffer is the backpressure): a
send that waits for the stall limit raises ``StreamStalled`` naming the limit, one whose reader
is gone ``StreamClosed``. Both are closed when the job is answered.
"""

import io
import socket

from ._errors import StreamClosed, StreamStalled

CHUNK = 64 * 1024


def split(spec, fds):
    """(input socket or None, output socket or None, stall seconds, the other descriptors);
    ValueError for an index out of range. ``spec`` is the run's ``streams`` (a dict) or None."""
    if spec is None:
        return None, None, 30.0, fds
    if not isinstance(spec, dict):
        raise ValueError("the run's streams is not an object")
    n = len(fds)
    picked = []
    for field in ("input", "output"):
        i = spec.get(field)
        if i is not None and (not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < n):
            raise ValueError("the run's stream index %r is out of its %d descriptors" % (i, n))
        picked.append(i)
    stall_ms = spec.get("stall_ms")
    if not isinstance(stall_ms, (int, float)) or isinstance(stall_ms, bool) or stall_ms < 0:
        raise ValueError("the run's streams.stall_ms is not a number >= 0")
    inp, out = picked
    if inp is not None and inp == out:
        raise ValueError("the run's input and output streams are the same descriptor")
    rest = [f for i, f in enumerate(fds) if i not in (inp, out)]
    return (fds[inp] if inp is not None else None, fds[out] if out is not None else None,
            stall_ms / 1000.0, rest)


class _Input(io.RawIOBase):
    """The reading end: recv into the caller's buffer, b"" at the end."""

    def __init__(self, sock):
        super().__init__()
        self._sock = sock
        sock.settimeout(None)
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def readable(self):
        return True

    def readinto(self, b):
        return self._sock.recv_into(b)

    def fileno(self):
        return self._sock.fileno()

    def close(self):
        if not self.closed:
            self._sock.close()
        super().close()


class OutputStream(io.RawIOBase):
    """The writing end: ``write`` sends every byte (each wait for room bounded by the stall
    limit) and returns their number; ``close`` ends the stream (the reader sees its end)."""

    def __init__(self, sock, stall):
        super().__init__()
        self._sock = sock
        self._stall = stall
        sock.settimeout(stall)
        try:
            sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass

    def writable(self):
        return True

    def write(self, b):
        view = memoryview(b).cast("B")
        done = 0
        while done < len(view):
            try:
                done += self._sock.send(view[done:done + CHUNK])
            except socket.timeout:
                raise StreamStalled(
                    "the stream's reader took nothing for %d ms (the stall limit): it stopped reading"
                    % round(self._stall * 1000)) from None
            except (BrokenPipeError, ConnectionResetError) as e:
                raise StreamClosed("the stream's other end was closed early (%s)" % e) from None
        return done

    def fileno(self):
        return self._sock.fileno()

    def close(self):
        if not self.closed:
            self._sock.close()
        super().close()


def reader(sock):
    """The input stream as a buffered binary file."""
    return io.BufferedReader(_Input(sock), CHUNK)


def writer(sock, stall):
    """The output stream as a binary file."""
    return OutputStream(sock, stall)
