"""The channel: newline-delimited compact JSON over a file descriptor (docs/protocol.md §1-2)."""

import collections
import json
import os
import socket
import threading

from ._errors import FrameTooLarge

_CHUNK = 64 * 1024


class ProtocolError(Exception):
    """A frame from the supervisor that the protocol forbids (docs/protocol.md §6)."""


class LineReader:
    """Reads newline-terminated lines from a file descriptor.

    An unfinished line never occupies more than ``max_frame + 1`` bytes: reads are sized so the
    buffer stops one byte past the limit, which is then a ProtocolError.
    """

    def __init__(self, fd, max_frame, chunk=_CHUNK):
        self._fd = fd
        self._max = max_frame
        self._chunk = chunk
        self._buf = bytearray()
        self._scanned = 0  # the first _scanned bytes of _buf hold no newline
        # Descriptors received (docs/protocol.md §9), oldest first, until a NODE_HANDLE frame
        # takes one. Read through a socket on a duplicate of fd (a pipe in unit tests: none).
        self.fds = collections.deque()
        self._sock = None
        dup = os.dup(fd)
        try:
            self._sock = socket.socket(fileno=dup)
        except OSError:  # not a socket
            os.close(dup)

    def read_line(self):
        """The next line without its newline; None at end of file (a partial last line is dropped)."""
        buf = self._buf
        while True:
            i = buf.find(b"\n", self._scanned)
            if i >= 0:
                if i > self._max:
                    raise self._too_long()
                line = bytes(buf[:i])
                del buf[: i + 1]
                self._scanned = 0
                return line
            self._scanned = len(buf)
            if len(buf) > self._max:
                raise self._too_long()
            try:
                data = self._read(min(self._chunk, self._max + 1 - len(buf)))
            except OSError:  # ECONNRESET and the like: the supervisor is gone
                return None
            if not data:
                return None
            buf += data

    def _read(self, n):
        if self._sock is None:
            return os.read(self._fd, n)
        data, fds, _flags, _addr = socket.recv_fds(self._sock, n, 8, getattr(socket, "MSG_CMSG_CLOEXEC", 0))
        self.fds.extend(fds)
        while len(self.fds) > 64:  # more unmatched ones than a supervisor sends: not ours to keep
            os.close(self.fds.popleft())
        return data

    def _too_long(self):
        del self._buf[:]
        return ProtocolError("a frame is longer than OFFLOAD_MAX_FRAME (%d bytes)" % self._max)


def decode(line):
    """One frame (bytes, no newline) to a dict; None for a blank line; ProtocolError otherwise."""
    if not line.strip():
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtocolError("a frame is not valid UTF-8 (%s at byte %d)" % (e.reason, e.start))
    try:
        msg = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise ProtocolError("a frame is not valid JSON (%s): %s" % (e, _excerpt(text)))
    if not isinstance(msg, dict):
        raise ProtocolError("a frame is a JSON %s, not an object: %s" % (_json_kind(msg), _excerpt(text)))
    return msg


def _reject_constant(name):
    raise ValueError("%s is not JSON" % name)  # Python's parser would accept NaN and Infinity


def _excerpt(text, n=80):
    return repr(text if len(text) <= n else text[:n] + "...")


def _json_kind(value):
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"


class Writer:
    """Encodes frames and writes them whole; one lock keeps frames from several threads apart."""

    def __init__(self, fd, max_frame, on_closed):
        self.fd = fd
        self.max_frame = max_frame
        self.lock = threading.Lock()
        self._on_closed = on_closed

    def encode(self, obj, what="frame"):
        """The frame's bytes with their newline. Raises TypeError or ValueError for values JSON
        cannot hold (NaN, sets, lone surrogates...), FrameTooLarge past the limit."""
        data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
        if len(data) > self.max_frame:
            raise FrameTooLarge(
                "the %s is %d bytes of JSON, over the frame limit of %d bytes (OFFLOAD_MAX_FRAME)"
                % (what, len(data), self.max_frame)
            )
        return data + b"\n"

    def send(self, obj):
        self.write(self.encode(obj))

    def write(self, data):
        with self.lock:
            self.write_locked(data)

    def write_locked(self, data):
        """Write while the caller holds self.lock."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError:  # EPIPE, ECONNRESET: the supervisor is gone
            self._on_closed()
