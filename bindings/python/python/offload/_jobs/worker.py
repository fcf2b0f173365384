"""The executor's worker program: speaks offload's worker protocol (``docs/protocol.md``) on the
channel fd and runs pickled calls ``(fn, args, kwargs)`` **one at a time, in arrival order**.

The pool may send it up to ``OFFLOAD_CONCURRENCY`` calls at once (the executor's ``prefetch``):
the next call waits in the socket and in this process's queue while one runs, so a worker never
idles for a round trip between two calls. Only one call runs at a time, so a crash can only be
that call's fault: before it starts a call, the worker sends a progress frame ``"b"`` ("begun")
for it, written together with the previous call's result. The host (``src/calls.rs``) fails a
call whose worker died with ``WorkerCrashed`` only when it had begun, and submits again the
calls that were only waiting.

Frames are read only between calls (a ``cancel`` or ``shutdown`` that arrives during a call is
seen after it; the pool kills a worker whose running call is cancelled). A call's own threads
may report progress (``offload.progress(data)``), written under a lock and dropped once the call
has returned.

**Giving back** (with ``OFFLOAD_CONCURRENCY`` above 1): a call that runs longer than
``_GIVE_BACK_AFTER`` would keep the calls sent after it from a worker that frees up first. A
watcher thread then reads the frames that came meanwhile and, when calls wait, sends ``busy``
(the pool sends this worker nothing more) and answers each waiting call with the error
``Requeued``; the host (``src/calls.rs``) submits them again, so they run on the first worker
that is ready. The worker sends ``ready`` with the long call's result. The watcher sleeps
while no call runs, and wakes at most once per ``_GIVE_BACK_AFTER`` while calls run.

It is started as ``python <this file>`` (``PoolConfig.args``), not through the worker SDK: no
job files, no handler threads, no asyncio. The host's ``sys.path`` arrives in
``OFFLOAD_EXECUTOR_PATH`` so functions are found by reference, as with the standard library.
"""

import base64
import collections
import json
import os
import pickle
import select
import sys
import threading
import time
import traceback
from typing import Any, Deque, Optional, Tuple

PROTOCOL = 1
_CHUNK = 256 * 1024
_DEFAULT_MAX_FRAME = 16 * 1024 * 1024
_HIGHEST = pickle.HIGHEST_PROTOCOL
_GIVE_BACK_AFTER = 0.02  # seconds a call runs before the calls waiting behind it are given back
REQUEUED = "Requeued"  # the error name of a call given back (src/calls.rs submits it again)
_encode = json.JSONEncoder(separators=(",", ":")).encode  # built once: json.dumps with options builds one a call

# This file's folder would shadow nothing but is not the host's: the host's path, in its order.
_here = os.path.dirname(os.path.abspath(__file__))
_host = [e for e in os.environ.get("OFFLOAD_EXECUTOR_PATH", "").split(os.pathsep) if e]
sys.path[:] = _host + [p for p in sys.path if p not in _host and os.path.abspath(p or ".") != _here]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _exception(e: BaseException) -> bytes:
    """``e`` pickled, or a RuntimeError naming it when it does not survive a round trip."""
    try:
        data = pickle.dumps(e, protocol=_HIGHEST)
        pickle.loads(data)
        return data
    except Exception as p:
        stand_in = RuntimeError("%s: %s (not picklable: %s)" % (type(e).__name__, e, p))
        return pickle.dumps(stand_in, protocol=_HIGHEST)


class _Worker:
    def __init__(self, fd: int, max_frame: int, depth: int) -> None:
        self.fd = fd
        self.max_frame = max_frame
        self.depth = depth
        # Whole frames (a call's threads may report progress); the watcher also reads under it.
        self.lock = threading.RLock()
        self.current: Optional[str] = None  # the id of the running call
        self.since = 0.0  # when it began (time.monotonic())
        self.busy = False  # `busy` was sent: `ready` goes with the running call's result
        self.watch = threading.Condition(threading.Lock())
        self.watching = False  # the watcher times a running call
        self.queue: Deque[Tuple[str, Any]] = collections.deque()  # (id, params) not begun yet
        self.closing = False
        self.buf = bytearray()  # what was read and is not a whole frame yet
        # Read into this buffer, allocated once: `os.read(fd, _CHUNK)` would map and unmap a
        # fresh 256 KiB buffer on every read (three syscalls and a page fault per call).
        self.chunk = bytearray(_CHUNK)
        self.view = memoryview(self.chunk)

    # -- the channel -------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        with self.lock:
            self.send(data)

    def send(self, data: bytes) -> None:
        """Writes ``data`` whole; the caller holds ``self.lock``."""
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except BrokenPipeError:
                os._exit(0)  # the supervisor is gone
            view = view[n:]

    def frame(self, obj: Any) -> bytes:
        return (_encode(obj) + "\n").encode()

    def read(self) -> None:
        """Reads what the channel has (blocking when nothing is there) and handles each whole
        frame. Exits at the end of the channel."""
        try:
            n = os.readv(self.fd, [self.chunk])
        except OSError:
            n = 0
        if not n:
            os._exit(0)
        buf = self.buf
        buf += self.view[:n]
        start = 0
        while True:
            i = buf.find(b"\n", start)
            if i < 0:
                break
            line = bytes(buf[start:i])
            start = i + 1
            if line.strip():
                self.handle(json.loads(line))
        del buf[:start]
        if len(buf) > self.max_frame:
            sys.stderr.write("offload executor worker: a frame is longer than OFFLOAD_MAX_FRAME\n")
            os._exit(2)

    def handle(self, msg: Any) -> None:
        kind = msg.get("type")
        if kind == "run":
            if self.closing:
                self.write(self.error(msg["id"], "ShuttingDown", "the worker is shutting down"))
            else:
                self.queue.append((msg["id"], msg.get("params")))
        elif kind == "cancel":  # a call not begun yet is dropped; the running one is killed
            for item in self.queue:
                if item[0] == msg.get("id"):
                    self.queue.remove(item)
                    self.write(self.error(item[0], "Cancelled", "the call was cancelled before it began"))
                    break
        elif kind == "ping":
            self.write(self.frame({"type": "pong", "id": msg.get("id")}))
        elif kind == "shutdown":
            self.closing = True  # the calls already here still run; then ack and exit
        elif kind == "call":
            self.write(self.error(msg.get("id"), "NoSuchFunction", "the executor's worker has no functions to call"))

    def error(self, job_id: Any, name: str, message: str, stack: Optional[str] = None) -> bytes:
        err = {"name": name, "message": message, "stack": stack, "retry": False}
        return self.frame({"type": "error", "id": job_id, "error": err})

    # -- calls -------------------------------------------------------------------------------

    def run(self, job_id: str, params: Any) -> bytes:
        """One call: its result frame (the value or what it raised, pickled)."""
        try:
            fn, args, kwargs = pickle.loads(base64.b64decode(params["call"]))
            value = fn(*args, **kwargs)
            reply = {"v": _b64(pickle.dumps(value, protocol=_HIGHEST))}
        except BaseException as e:  # what the call raised, as the standard library reports it
            reply = {"e": _b64(_exception(e)), "tb": traceback.format_exc()}
        data = b'{"type":"result","id":%s,"value":%s}\n' % (_encode(job_id).encode(), _encode(reply).encode())
        if len(data) > self.max_frame:
            return self.error(
                job_id,
                "ResultTooLarge",
                "the call's pickled result is %d bytes, more than the channel's frame limit of %d "
                "(OFFLOAD_MAX_FRAME)" % (len(data), self.max_frame),
            )
        return data

    def progress(self, data: Any) -> bool:
        """``offload.progress(data)`` from the running call (any of its threads)."""
        job_id = self.current
        if job_id is None:
            return False
        frame = self.frame({"type": "progress", "id": job_id, "data": ["p", data]})
        with self.lock:
            if self.current != job_id:  # the call returned meanwhile: dropped
                return False
        self.write(frame)
        return True

    # -- giving back ------------------------------------------------------------------------

    def watcher(self) -> None:
        """Gives back the calls waiting behind a call that runs too long (the module's doc)."""
        with self.watch:
            while True:
                job_id, since = self.current, self.since
                if job_id is None:
                    self.watching = False
                    self.watch.wait()
                    continue
                left = since + _GIVE_BACK_AFTER - time.monotonic()
                if left > 0:
                    self.watch.wait(left)
                    continue
                self.give_back(job_id)
                self.watch.wait(_GIVE_BACK_AFTER)  # it still runs: look again later

    def give_back(self, job_id: str) -> None:
        """Reads the frames that came during the long call ``job_id`` (the main thread does
        not read while a call runs) and gives back every call waiting in this worker."""
        with self.lock:
            if self.current != job_id:  # it returned meanwhile
                return
            if select.select([self.fd], [], [], 0)[0]:
                self.read()  # `run`s join the queue; a ping is answered
            if not self.queue:
                return
            frames = [] if self.busy else [b'{"type":"busy"}\n']
            while self.queue:
                waiting, _ = self.queue.popleft()
                frames.append(self.error(waiting, REQUEUED, "given back: it waited behind a long call"))
            self.busy = True
            self.send(b"".join(frames))

    def serve(self) -> None:
        if self.depth > 1:
            threading.Thread(target=self.watcher, name="offload-give-back", daemon=True).start()
        self.write(self.frame({
            "type": "ready",
            "protocol": PROTOCOL,
            "pid": os.getpid(),
            "runtime": "python/%d.%d.%d" % sys.version_info[:3],
            "capabilities": ["cancel", "progress", "shutdown", "ping"],
            "concurrency": self.depth,
        }))
        pending = b""  # the last call's result, sent with the next call's "begun"
        while True:
            if not self.queue:
                if pending:
                    self.write(pending)
                    pending = b""
                if self.closing:
                    self.write(self.frame({"type": "ack", "id": "shutdown"}))
                    os._exit(0)
                self.read()
                continue
            job_id, params = self.queue.popleft()
            begun = b'{"type":"progress","id":%s,"data":"b"}\n' % _encode(job_id).encode()
            self.since = time.monotonic()
            self.current = job_id
            if self.depth > 1:
                with self.watch:  # the watcher times the call
                    if not self.watching:
                        self.watching = True
                        self.watch.notify()
            self.write(pending + begun)
            result = self.run(job_id, params)
            with self.lock:
                self.current = None
                if self.busy:
                    self.busy = False
                    result += b'{"type":"ready"}\n'
            pending = result


def main() -> None:
    fd = int(os.environ.get("OFFLOAD_CHANNEL_FD", "3"))
    max_frame = int(os.environ.get("OFFLOAD_MAX_FRAME", "") or _DEFAULT_MAX_FRAME)
    depth = max(1, int(os.environ.get("OFFLOAD_CONCURRENCY", "") or 1))
    os.set_inheritable(fd, False)  # the calls' own child processes must not hold the channel
    os.environ.pop("OFFLOAD_CHANNEL_FD", None)
    worker = _Worker(fd, max_frame, depth)
    setattr(sys.modules["__main__"], "_offload_progress", worker.progress)  # offload.progress() finds it
    worker.serve()


if __name__ == "__main__":
    main()
