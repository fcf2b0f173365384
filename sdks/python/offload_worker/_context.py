"""The ctx a handler receives: identity, progress, events and cancellation."""

import threading

from . import _streams
from ._errors import Cancelled, DeadlineExceeded

RECEIVERS = {"all": "all", "job": "job", "task": "task", "childJob": "job", "forkProcess": "task"}

# Set by the runner to the ident of its asyncio thread, so ctx.sleep() can refuse to block it.
loop_thread_ident = None


class CancelToken:
    """Fires once, with a reason: "cancel", "deadline" or "shutdown". Thread-safe."""

    __slots__ = ("_event", "_lock", "_callbacks", "reason")

    def __init__(self):
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks = []
        self.reason = None

    @property
    def fired(self):
        return self._event.is_set()

    def cancel(self, reason="cancel"):
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            callbacks, self._callbacks = self._callbacks, None
        for fn in callbacks:
            _call_logged(fn, "a cancellation callback")

    def add_callback(self, fn):
        """Call fn() (from whichever thread cancels) when the token fires; now if it has."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(fn)
                return
        _call_logged(fn, "a cancellation callback")

    def wait(self, timeout=None):
        return self._event.wait(timeout)


class Context:
    """What a handler gets besides its params: ``handle(params, ctx)``.

    Attributes: ``id`` (the job's id), ``job`` (its name), ``params``, ``args`` (the run's
    optional positional arguments, ee-core's jobParams, else None) and ``deadline`` (Unix epoch
    milliseconds, or None).
    """

    __slots__ = (
        "id", "job", "params", "args", "deadline",
        "_runner", "_token", "_answered", "_timer", "_task", "_delivered", "_waiter", "_is_call", "sent",
        "_fds", "_streams", "_taken",
    )

    def __init__(self, id, job, params=None, args=None, deadline=None, runner=None):
        self.id = id
        self.job = job
        self.params = params
        self.args = args
        self.deadline = deadline
        self._runner = runner  # None: frames are appended to ctx.sent (handy in unit tests)
        self._token = CancelToken()
        self._answered = False
        self._timer = None
        self._task = None  # the asyncio task of an async handler
        self._delivered = False  # the async handler has been told (task.cancel() or waiter)
        self._waiter = None  # the future wait_cancelled() is awaiting
        self._is_call = False  # a `call`: a control operation, outside the concurrency limit
        self.sent = [] if runner is None else None
        self._fds = []  # descriptors passed with the run, until take_fds()
        self._streams = [None, None, 30.0]  # input socket, output socket, stall seconds
        self._taken = []  # the stream files the handler took: closed when the job is answered

    def __repr__(self):
        return "<offload_worker.Context id=%r job=%r cancelled=%r>" % (self.id, self.job, self.cancelled)

    def take_fds(self):
        """The descriptors passed with this run (docs/protocol.md §9), in order: a
        socket.socket for a socket, an unbuffered file object otherwise. They are the caller's
        to close; a second call returns []. Those never taken are closed when the job is
        answered."""
        fds, self._fds = self._fds, []
        return fds

    def input_stream(self):
        """The job's input stream (docs/protocol.md §10; the host's ``run_with_streams``): a
        buffered binary file to read to its end (``read()`` returns b"" there). Raises
        LookupError when the run has none (or it was taken). Closed when the job is answered."""
        sock, self._streams[0] = self._streams[0], None
        if sock is None:
            raise LookupError("the run has no input stream")
        f = _streams.reader(sock)
        self._taken.append(f)
        return f

    def output_stream(self):
        """The job's output stream: a binary file whose ``write`` sends all it is given,
        waiting while the host does not read; StreamStalled (naming the limit) when it waited
        the run's stall limit, StreamClosed when the host closed its end. ``close()`` ends the
        stream; it is closed when the job is answered. Raises LookupError when the run has
        none. (Blocking: an ``async def`` job calls it through ``asyncio.to_thread``.)"""
        sock, self._streams[1] = self._streams[1], None
        if sock is None:
            raise LookupError("the run has no output stream")
        f = _streams.writer(sock, self._streams[2])
        self._taken.append(f)
        return f

    def _close_streams(self):
        """The job is answered: its streams are closed, taken or not."""
        left = [s for s in self._streams[:2] if s is not None] + self._taken
        self._streams[0] = self._streams[1] = None
        self._taken = []
        for f in left:
            try:
                f.close()
            except OSError:
                pass

    # -- messages --------------------------------------------------------------------------

    def fail(self, exc, retry=True):
        """Fail the job now: raises ``exc`` (an exception, or a message). With ``retry=False``
        the job goes straight to dead, whatever attempts it has left."""
        if not isinstance(exc, BaseException):
            exc = RuntimeError(str(exc))
        if retry is False:
            exc.retry = False
        raise exc

    def progress(self, data):
        """Send progress (any JSON value) for this job. Frames keep their order; the supervisor
        keeps the last one. Raises TypeError/ValueError if data is not JSON, FrameTooLarge."""
        self._send({"type": "progress", "id": self.id, "data": data}, "progress")

    def emit(self, name, data=None, receiver="all"):
        """Send a named event to the application. receiver: "all" (default), "job" (the
        manager emits it) or "task" (only this process's handle); ee-core's "childJob" and
        "forkProcess" mean "job" and "task"."""
        self._send(event_frame(name, data, receiver, self.id), "event")

    def _send(self, frame, what):
        if self._runner is None:
            self.sent.append(frame)
        else:
            self._runner.send_for(self, frame, what)

    # -- cancellation ----------------------------------------------------------------------

    @property
    def cancelled(self):
        """True once the job has been cancelled (cancel, deadline or shutdown)."""
        return self._token.fired

    @property
    def cancel_reason(self):
        """None, or why the job was cancelled: "cancel", "deadline" or "shutdown"."""
        return self._token.reason

    def check_cancelled(self):
        """Raise Cancelled (DeadlineExceeded if the deadline passed) if the job was cancelled."""
        if self._token.fired:
            raise self._cancel_error()

    def on_cancel(self, fn):
        """Call fn() when the job is cancelled (at once if it already is). fn runs on whichever
        thread cancels; keep it short (set a flag, kill a subprocess, close a socket)."""
        self._token.add_callback(fn)

    def wait(self, timeout=None):
        """Block until the job is cancelled or timeout seconds pass; True if cancelled.
        For sync handlers; async handlers use ``await ctx.wait_cancelled()``."""
        self._refuse_on_loop("wait", "wait_cancelled")
        return self._token.wait(timeout)

    def sleep(self, seconds):
        """Sleep, but raise Cancelled (or DeadlineExceeded) as soon as the job is cancelled,
        also if it already was. For sync handlers; async handlers use ``await ctx.asleep()``."""
        self._refuse_on_loop("sleep", "asleep")
        if self._token.wait(min(max(0.0, seconds), threading.TIMEOUT_MAX)):
            raise self._cancel_error()

    async def asleep(self, seconds):
        """``await ctx.asleep(s)``: like asyncio.sleep, but raises Cancelled on cancellation."""
        if await self.wait_cancelled(max(0.0, seconds)):
            raise self._cancel_error()

    async def wait_cancelled(self, timeout=None):
        """``await ctx.wait_cancelled(timeout)``: wait until the job is cancelled (True) or
        timeout seconds pass (False). In the job's own task a cancellation arriving here wakes
        this await instead of raising asyncio.CancelledError, so the handler can clean up."""
        import asyncio

        loop = asyncio.get_running_loop()
        bound = self._task is not None and asyncio.current_task() is self._task
        if self._delivered if bound else self._token.fired:
            return True
        waiter = loop.create_future()
        if bound:
            self._waiter = waiter
        else:  # some other task or loop: just watch the token
            self._token.add_callback(lambda: _resolve_threadsafe(loop, waiter))
        timer = None if timeout is None else loop.call_later(max(0.0, timeout), _resolve, waiter, False)
        try:
            return await waiter
        except asyncio.CancelledError:
            if bound and self._delivered:  # our cancel raced a timeout: report it, do not raise
                uncancel = getattr(self._task, "uncancel", None)
                if uncancel is not None:
                    uncancel()
                return True
            raise
        finally:
            if bound:
                self._waiter = None
            if timer is not None:
                timer.cancel()

    def _deliver_cancel(self):
        """On the loop thread, once the token fired: wake wait_cancelled() or cancel the task."""
        task = self._task
        if self._delivered or task is None or task.done():
            return
        self._delivered = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)
        else:
            task.cancel()

    def _cancel_error(self):
        if self._token.reason == "deadline":
            return DeadlineExceeded("the job's deadline passed")
        if self._token.reason == "shutdown":
            return Cancelled("the job was cancelled: the worker is shutting down")
        return Cancelled("the job was cancelled")

    def _refuse_on_loop(self, name, instead):
        if loop_thread_ident is not None and threading.get_ident() == loop_thread_ident:
            raise RuntimeError(
                "ctx.%s() would block the event loop; in an async handler use await ctx.%s()" % (name, instead)
            )


def event_frame(name, data, receiver, job_id=None):
    if not isinstance(name, str) or not name:
        raise TypeError("an event name must be a non-empty string, not %r" % (name,))
    wire = RECEIVERS.get(receiver)
    if wire is None:
        raise ValueError("receiver must be 'all', 'job' or 'task', not %r" % (receiver,))
    frame = {"type": "event", "name": name, "data": data, "receiver": wire}
    if job_id is not None:
        frame["id"] = job_id
    return frame


def _resolve(future, value):
    if not future.done():
        future.set_result(value)


def _resolve_threadsafe(loop, future):
    try:
        loop.call_soon_threadsafe(_resolve, future, True)
    except RuntimeError:  # that loop is closed: nobody waits any more
        pass


def _call_logged(fn, what):
    try:
        fn()
    except Exception:
        import sys
        import traceback

        sys.stderr.write("offload worker: %s failed:\n%s" % (what, traceback.format_exc()))
