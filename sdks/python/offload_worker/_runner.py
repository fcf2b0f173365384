"""The runner: speaks protocol v1 on the channel and runs job files (docs/protocol.md).

Threads:
- the main thread reads frames and dispatches them; it never runs job code, so cancel, ping
  and the end of the channel are always noticed (on EOF the process exits at once);
- a pool of at most OFFLOAD_CONCURRENCY threads runs sync handlers (and loads job files);
  sync `call` functions get threads of their own, so a call (pause, status) can reach a job
  that occupies every slot;
- one asyncio loop thread, started on first need, runs async handlers and async listeners;
- a signal watcher thread turns SIGTERM/SIGINT into a shutdown; a shutdown drains on its own
  thread; a threading.Timer per job with a deadline fires its cancellation.
Frames are written whole under one lock (Writer.lock). Lock order: Writer.lock, then
Runner._lock; nothing writes while holding Runner._lock.
"""

import json
import os
import queue
import signal
import sys
import threading
import time

from . import _context, _control, _events, _jobs
from ._channel import LineReader, ProtocolError, Writer, decode
from . import _fds, _streams
from ._context import Context, event_frame
from ._frames import _array, _excerpt, _id, _number, _str
from ._errors import Busy, Cancelled, DeadlineExceeded, FrameTooLarge, JobNotFound, NoSuchFunction, ShuttingDown

PROTOCOL = 1
CAPABILITIES = ["cancel", "call", "progress", "events", "shutdown", "ping", "fds"]
PROTOCOL_MINOR = 1  # 1.1: descriptors passed with a run (docs/protocol.md §9)
DEFAULT_MAX_FRAME = 16 * 1024 * 1024
SIGNAL_GRACE_MS = 5000  # SIGTERM / SIGINT: a shutdown with this grace
ANSWER_WAIT_S = 2.0  # after cancelling at shutdown, how long jobs get to answer before the runner answers for them
UNLOAD_MIN_S = 1.0  # at shutdown, the least time the job modules' unload() get, however little grace is left

_current = None  # the running Runner, for the module-level emit()


class Runner:
    def __init__(self, fd, jobs_dir, concurrency=1, max_frame=DEFAULT_MAX_FRAME):
        self.concurrency = concurrency
        self._reader = LineReader(fd, max_frame)
        self._out = Writer(fd, max_frame, on_closed=lambda: self._exit(0))
        self._loader = _jobs.Loader(jobs_dir)
        _jobs.set_default_loader(self._loader)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # notified whenever a job is answered
        self._jobs = {}  # id -> Context of every run/call not answered yet
        self._runs = 0  # how many of them are runs (calls do not count toward concurrency)
        self._closing = False  # after shutdown: runs are refused
        self._finished = False  # the shutdown is answering what is left: calls are refused too
        self._pool = _Pool(concurrency)  # sync run handlers
        self._call_pool = _Pool(sys.maxsize)  # sync call functions: never queued behind a run
        self._loop = None
        self._loop_lock = threading.Lock()
        self._tasks = set()  # strong references to background asyncio tasks
        self._fds = _fds.PendingFds()  # descriptors waiting for their run
        self._handlers = {
            "run": self._on_run,
            "call": self._on_call,
            "cancel": self._on_cancel,
            "event": self._on_event,
            "ping": self._on_ping,
            "shutdown": self._on_shutdown,
            "kill": self._on_kill,
        }

    # -- main loop -------------------------------------------------------------------------

    def serve(self):
        """Send ready, then read and dispatch frames until the channel closes. Never returns:
        the process ends with os._exit (0 on EOF or after shutdown, 2 on a protocol error)."""
        global _current
        _current = self
        _control.attach(self._out, self._asyncio_loop)
        self._watch_signals()
        self._out.send({
            "type": "ready",
            "protocol": PROTOCOL,
            "pid": os.getpid(),
            "runtime": "python/%d.%d.%d" % sys.version_info[:3],
            "capabilities": CAPABILITIES,
            "concurrency": self.concurrency,
            "minor": PROTOCOL_MINOR,
        })
        while True:
            try:
                line = self._reader.read_line()
                if line is None:
                    self._exit(0)
                if line.startswith(b'{"cmd":"NODE_HANDLE"'):
                    self._on_handle(line)
                    continue
                msg = decode(line)
                if msg is not None:
                    self._dispatch(msg)
            except ProtocolError as e:
                self._protocol_error(e)
            except Exception:
                _log_exception("internal error while handling a frame")

    def _dispatch(self, msg):
        kind = msg.get("type")
        if kind is not None:
            if not isinstance(kind, str):
                raise ProtocolError("'type' must be a string, not %s" % json.dumps(kind))
            handler = self._handlers.get(kind)
            if handler is not None:  # unknown types are ignored (§6)
                handler(msg)
        elif msg.get("cmd") is not None:
            self._on_legacy(msg)
        elif msg.get("channel") is None:  # a legacy child->main message is ignored
            raise ProtocolError("a frame has no 'type', 'cmd' or 'channel': %s" % _excerpt(msg))

    def _exit(self, code):
        _flush_output()
        os._exit(code)

    def _protocol_error(self, what):
        try:
            sys.stderr.write("offload worker: protocol error: %s\n" % what)
        finally:
            self._exit(2)

    # -- supervisor messages ---------------------------------------------------------------

    def _on_handle(self, line):
        """A NODE_HANDLE frame: the oldest descriptor received is its (docs/protocol.md §9)."""
        msg = decode(line)
        fd = self._reader.fds.popleft() if self._reader.fds else None
        kept = self._fds.offer(msg.get("msg"), fd)
        self._out.write(_fds.ACK if kept else _fds.NACK)

    def _on_run(self, msg):
        job_id = _id(msg, "id", "run")
        job, path = _str(msg, "job", "run"), _str(msg, "path", "run")
        if job is None and path is None:
            raise ProtocolError("run %r has neither 'job' nor 'path'" % job_id)
        deadline = _number(msg, "deadline", "run")
        args = _array(msg, "args", "run")
        ctx = Context(job_id, job if job is not None else _jobs.legacy_job_name(path),
                      msg.get("params"), args, deadline, self)
        n = _number(msg, "fds", "run")
        if n:
            try:
                ctx._fds = self._fds.take(job_id, int(n))
                inp, out, stall, ctx._fds = _streams.split(msg.get("streams"), ctx._fds)
                ctx._streams = [inp, out, stall]
            except ValueError as e:
                _fds.close_all(ctx._fds)
                err = {"name": "FdMissing", "message": str(e), "stack": None}
                self._out.write(self._error_frame(job_id, err))
                return
        self._admit(ctx, path, None, None)

    def _on_call(self, msg):
        job_id = _id(msg, "id", "call")
        job, path = _str(msg, "job", "call"), _str(msg, "path", "call")
        if job is None and path is None:
            raise ProtocolError("call %r has neither 'job' nor 'path'" % job_id)
        func = _str(msg, "func", "call", required=True)
        args = _array(msg, "args", "call") or []
        ctx = Context(job_id, job if job is not None else _jobs.legacy_job_name(path), None, args, None, self)
        self._admit(ctx, path, func, args)

    def _on_legacy(self, msg):
        """ee-core's {mid, cmd: "run", jobPath, jobParams | jobFunc, jobFuncParams} (§5)."""
        cmd = msg.get("cmd")
        if not isinstance(cmd, str):
            raise ProtocolError("'cmd' must be a string, not %s" % json.dumps(cmd))
        if cmd != "run":  # NODE_* and anything else: ignored
            return
        job_id = _id(msg, "mid", "run")
        job_path = _str(msg, "jobPath", "run", required=True)
        path = job_path if job_path.startswith("/") else None
        job = _jobs.legacy_job_name(job_path)
        func = _str(msg, "jobFunc", "run")
        if func:
            args = _array(msg, "jobFuncParams", "run") or []
            self._admit(Context(job_id, job, None, args, None, self), path, func, args)
        else:
            args = _array(msg, "jobParams", "run") or []
            ctx = Context(job_id, job, args[0] if args else None, args, None, self)
            self._admit(ctx, path, None, None)

    def _on_cancel(self, msg):
        self._fds.forget(_id(msg, "id", "cancel"))
        ctx = self._jobs.get(_id(msg, "id", "cancel"))
        if ctx is not None:  # an unknown or finished id is ignored
            ctx._token.cancel("cancel")

    def _on_ping(self, msg):
        self._out.send(_control.pong(_id(msg, "id", "ping")))

    def _on_event(self, msg):
        name = _str(msg, "name", "event", required=True)
        ack_id = _id(msg, "id", "event", required=False)
        data = msg.get("data")
        pending = []
        for fn in _events.listeners(name):
            try:
                result = fn(data)
            except Exception:
                _log_exception("event listener %r for %r failed" % (fn, name))
            else:
                if _is_awaitable(result):
                    pending.append(result)
        if pending:
            self._spawn(self._finish_listeners(pending, name, ack_id))
        elif ack_id is not None:
            self._out.send({"type": "ack", "id": ack_id})

    async def _finish_listeners(self, pending, name, ack_id):
        for awaitable in pending:
            try:
                await awaitable
            except Exception:
                _log_exception("async event listener for %r failed" % name)
        if ack_id is not None:
            self._out.send({"type": "ack", "id": ack_id})

    def _on_shutdown(self, msg):
        grace_ms = _number(msg, "grace_ms", "shutdown")
        self._shutdown(SIGNAL_GRACE_MS if grace_ms is None else grace_ms)

    # -- shutdown and signals ---------------------------------------------------------------

    def _shutdown(self, grace_ms):
        """Refuse new jobs from now on, then drain on a thread of its own."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        hooks = _control.start_shutdown_hooks()  # on_shutdown hooks run while the jobs finish
        threading.Thread(target=self._drain, args=(grace_ms, hooks), name="offload-shutdown", daemon=True).start()

    def _on_kill(self, msg):
        """The kill notice: cancel the jobs, run the hard-kill hooks, exit (SIGKILL follows)."""
        _number(msg, "grace_ms", "kill")
        with self._lock:
            self._closing = True
            left = list(self._jobs.values())
        for ctx in left:
            ctx._token.cancel("killed")
        _control.run_kill_hooks()
        self._exit(0)

    def _drain(self, grace_ms, hooks=()):
        grace_end = time.monotonic() + max(0.0, grace_ms / 1000.0)
        hooks_end = time.monotonic() + UNLOAD_MIN_S  # the shutdown hooks get at least this
        with self._lock:
            self._wait_idle(max(0.0, grace_ms / 1000.0))
            left = list(self._jobs.values())
        for ctx in left:
            ctx._token.cancel("shutdown")
        with self._lock:
            if left:
                self._wait_idle(ANSWER_WAIT_S)
            self._finished = True
            left = list(self._jobs.values())
        for ctx in left:  # they ignore cancellation; answer for them, a late answer is dropped
            self._fail(ctx, Cancelled(
                "the job was cancelled at shutdown and did not stop within %gs" % ANSWER_WAIT_S), stack=False)
        self._unload_jobs(max(grace_end, time.monotonic() + UNLOAD_MIN_S))
        _control.join_hooks(hooks, max(grace_end, hooks_end))
        self._out.send({"type": "ack", "id": "shutdown"})
        self._exit(0)

    def _unload_jobs(self, end):
        """Call the unload() of every job module loaded, each once on a thread of its own, and
        wait for them until `end` (time.monotonic()); the ones still running are abandoned."""
        threads = []
        for path, module in self._loader.loaded():
            fn = module.__dict__.get("unload")
            if callable(fn):
                where = getattr(module, "__file__", None) or path
                thread = threading.Thread(target=self._unload_one, args=(where, fn), name="offload-unload",
                                          daemon=True)
                thread.start()
                threads.append(thread)
        for thread in threads:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            thread.join(min(remaining, threading.TIMEOUT_MAX))

    def _unload_one(self, path, fn):
        try:
            result = fn()
            if _is_awaitable(result):  # an async def unload(): awaited on the event loop
                import asyncio

                async def wait():
                    return await result

                asyncio.run_coroutine_threadsafe(wait(), self._asyncio_loop()).result()
        except BaseException as e:
            try:
                sys.stderr.write("offload worker: unload() of %s failed: %s: %s\n%s" % (
                    path, type(e).__name__, _text(e), _stack(e) or ""))
                sys.stderr.flush()
            except Exception:
                pass

    def _wait_idle(self, seconds):
        """With self._lock held: wait until no job is in flight, at most `seconds`."""
        end = time.monotonic() + seconds
        while self._jobs:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            self._changed.wait(min(remaining, threading.TIMEOUT_MAX))

    def _watch_signals(self):
        """SIGTERM and SIGINT start a shutdown. The handler only writes a byte to a pipe (it
        runs on the main thread at any point, even while that thread holds a lock); a watcher
        thread does the rest."""
        r, w = os.pipe()
        os.set_blocking(w, False)
        pid = os.getpid()

        def handler(signum, frame):
            if os.getpid() != pid:  # a process a job forked inherited this handler: die as usual
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
                return
            try:
                os.write(w, b"!")
            except OSError:
                pass

        def watch():
            while os.read(r, 1) != b"!":
                pass
            self._shutdown(SIGNAL_GRACE_MS)

        threading.Thread(target=watch, name="offload-signals", daemon=True).start()
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # -- running jobs ----------------------------------------------------------------------

    def _admit(self, ctx, path, func, call_args):
        ctx._is_call = func is not None
        with self._lock:
            if ctx.id in self._jobs:
                raise ProtocolError("%r is already the id of a job in flight" % ctx.id)
            if self._finished or (self._closing and not ctx._is_call):
                refusal = ShuttingDown("the worker is shutting down and takes no new jobs")
            elif not ctx._is_call and self._runs >= self.concurrency:
                refusal = Busy("the worker already runs %d job(s), its concurrency (OFFLOAD_CONCURRENCY)"
                               % self.concurrency)
            else:
                refusal = None
                self._jobs[ctx.id] = ctx
                self._runs += not ctx._is_call
        if refusal is not None:
            _fds.close_all(ctx.take_fds())
            ctx._close_streams()
            self._out.write(self._error_frame(ctx.id, _error_object(refusal, None, stack=False)))
            return
        if ctx.deadline is not None:
            delay = ctx.deadline / 1000.0 - time.time()
            if delay <= 0:  # already past: do not start it
                ctx._token.cancel("deadline")
                self._fail(ctx, DeadlineExceeded("the job's deadline had passed when it arrived"), stack=False)
                return
            if delay < threading.TIMEOUT_MAX:  # else it will never pass
                ctx._timer = threading.Timer(delay, ctx._token.cancel, ("deadline",))
                ctx._timer.daemon = True
                ctx._timer.start()
        try:
            file = self._loader.resolve(ctx.job, path)
        except JobNotFound as e:
            self._fail(ctx, e, stack=False)
            return
        module = self._loader.cached(file)
        if module is None:  # executing a job file is job code: never on the reader thread
            self._pool_for(ctx).submit(self._load_and_launch, ctx, file, func, call_args)
        else:
            self._launch(ctx, module, func, call_args, on_pool=False)

    def _load_and_launch(self, ctx, file, func, call_args):
        try:
            module = self._loader.load(file)
        except JobNotFound as e:
            self._fail(ctx, JobNotFound("job %r: %s" % (ctx.job, e)), stack=False)
            return
        except BaseException as e:
            self._fail(ctx, e)
            return
        self._launch(ctx, module, func, call_args, on_pool=True)

    def _launch(self, ctx, module, func, call_args, on_pool):
        if func is None:
            fn = module.__dict__.get("handle")
            if not callable(fn):
                self._fail(ctx, JobNotFound("job %r: %s defines no handle(params, ctx)" % (ctx.job, module.__file__)),
                           stack=False)
                return
            args = (ctx.params, ctx)
        else:
            fn = module.__dict__.get(func)
            if (func.startswith("_") or not callable(fn) or not hasattr(fn, "__code__")
                    or getattr(fn, "__module__", None) != module.__name__):
                self._fail(ctx, NoSuchFunction("job %r has no top-level function %r" % (ctx.job, func)), stack=False)
                return
            args = tuple(call_args)
        if _is_coroutine_function(fn):
            self._spawn(self._run_async(ctx, fn, args))
        elif on_pool:
            self._run_sync(ctx, fn, args)
        else:
            self._pool_for(ctx).submit(self._run_sync, ctx, fn, args)

    def _pool_for(self, ctx):
        return self._call_pool if ctx._is_call else self._pool

    def _run_sync(self, ctx, fn, args):
        try:
            value = fn(*args)
        except BaseException as e:
            self._fail(ctx, e)
            return
        if _is_awaitable(value):  # a plain function that returned a coroutine
            self._spawn(self._run_async(ctx, None, value))
        else:
            self._succeed(ctx, value)

    async def _run_async(self, ctx, fn, args):
        import asyncio

        ctx._task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        ctx._token.add_callback(lambda: loop.call_soon_threadsafe(ctx._deliver_cancel))
        try:
            value = fn(*args) if fn is not None else args
            if _is_awaitable(value):
                value = await value
        except BaseException as e:  # asyncio.CancelledError included
            self._fail(ctx, e)
        else:
            self._succeed(ctx, value)

    def _spawn(self, coro):
        """Run a coroutine as a task on the asyncio loop thread (started on first use)."""
        loop = self._asyncio_loop()

        def start():
            task = loop.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        loop.call_soon_threadsafe(start)

    def _asyncio_loop(self):
        with self._loop_lock:
            if self._loop is None:
                import asyncio

                loop = asyncio.new_event_loop()
                started = threading.Event()

                def run():
                    _context.loop_thread_ident = threading.get_ident()
                    asyncio.set_event_loop(loop)
                    loop.call_soon(started.set)
                    loop.run_forever()

                threading.Thread(target=run, name="offload-asyncio", daemon=True).start()
                started.wait()
                self._loop = loop
            return self._loop

    # -- answers ---------------------------------------------------------------------------

    def _succeed(self, ctx, value):
        try:
            data = self._out.encode({"type": "result", "id": ctx.id, "value": value}, "result")
        except FrameTooLarge as e:
            self._fail(ctx, e, stack=False)
        except (TypeError, ValueError, RecursionError) as e:
            self._fail(ctx, TypeError("the result of job %r is not JSON-serializable: %s" % (ctx.job, e)),
                       stack=False)
        else:
            self._answer(ctx, data)

    def _fail(self, ctx, exc, stack=True):
        self._answer(ctx, self._error_frame(ctx.id, _error_object(exc, ctx._token.reason, stack)))

    def _answer(self, ctx, data):
        """Send a job's one answer; later ones (a job that ends after the runner answered for
        it at shutdown) are dropped. The slot is freed before the frame is written, so the
        supervisor can never see the answer and still get Busy for its next run. What the job
        printed is flushed first: the supervisor drains the pipes when the answer comes. Its
        streams are closed first too: the host has their ends when the answer comes."""
        ctx._close_streams()
        _flush_output()
        with self._out.lock:
            with self._lock:
                if ctx._answered:
                    return
                ctx._answered = True
                del self._jobs[ctx.id]
                self._runs -= not ctx._is_call
                self._changed.notify_all()
            self._out.write_locked(data)
        if ctx._timer is not None:
            ctx._timer.cancel()
        _fds.close_all(ctx.take_fds())  # what the handler did not take

    def _error_frame(self, job_id, err):
        """An error frame that always fits in a frame: long texts are cut, odd characters replaced."""
        try:
            return self._out.encode({"type": "error", "id": job_id, "error": err})
        except ValueError:  # FrameTooLarge, or a lone surrogate in a message
            budget = max(64, self._out.max_frame // 16)
            err = {k: _clip(v, 128 if k == "name" else budget) for k, v in err.items()}
            try:
                return self._out.encode({"type": "error", "id": job_id, "error": err})
            except ValueError:
                return self._out.encode({"type": "error", "id": job_id, "error": {
                    "name": err["name"], "message": "(the error was too large to send)", "stack": None,
                    **({"retry": False} if err.get("retry") is False else {})}})

    def send_for(self, ctx, frame, what):
        """ctx.progress() and ctx.emit(): raise into the job if the frame cannot be sent;
        dropped once the job has been answered."""
        data = self._out.encode(frame, what)
        if not ctx._answered:
            self._out.write(data)

    def emit(self, name, data=None, receiver="all"):
        self._out.write(self._out.encode(event_frame(name, data, receiver), "event"))


class _Pool:
    """Threads for sync handlers, started on demand, never more than `size`."""

    def __init__(self, size):
        self._size = size
        self._queue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._free = 0  # threads not running an item, minus items waiting

    def submit(self, fn, *args):
        self._queue.put((fn, args))
        with self._lock:
            self._free -= 1
            if self._free < 0 and self._threads < self._size:
                self._threads += 1
                self._free += 1
                threading.Thread(target=self._work, name="offload-job-%d" % self._threads, daemon=True).start()

    def _work(self):
        while True:
            fn, args = self._queue.get()
            try:
                fn(*args)
            except BaseException:
                _log_exception("internal error in a job thread")
            with self._lock:
                self._free += 1


# -- helpers ---------------------------------------------------------------------------------

def _flush_output():
    """Flush stdout and stderr (blocks while a pipe is full, as the job's own print does)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _error_object(exc, reason, stack=True):
    if isinstance(exc, Cancelled) or _is_asyncio_cancel(exc):
        if isinstance(exc, DeadlineExceeded) or reason == "deadline":
            name, default = "DeadlineExceeded", "the job's deadline passed"
        else:
            name, default = "Cancelled", "the job was cancelled"
        message = _text(exc) or default
    else:
        name, message = type(exc).__name__, _text(exc)
    err = {"name": name, "message": message, "stack": _stack(exc) if stack else None}
    if getattr(exc, "retry", True) is False:
        err["retry"] = False
    return err


def _stack(exc):
    import traceback

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:  # hide the runner's frames
        tb = tb.tb_next
    try:
        return "".join(traceback.format_exception(type(exc), exc, tb))
    except Exception:
        return None


def _text(exc):
    try:
        return str(exc)
    except Exception:
        return "<%s with an unprintable message>" % type(exc).__name__


def _clip(value, limit):
    if not isinstance(value, str):
        return value
    if len(value) > limit:
        value = value[:limit] + "... (%d characters cut)" % (len(value) - limit)
    return value.encode("utf-8", "replace").decode("utf-8")


def _is_asyncio_cancel(exc):
    """isinstance(exc, asyncio.CancelledError), without importing asyncio or reading a
    partially imported one (a job may be importing it on another thread right now)."""
    return any(c.__name__ == "CancelledError" and c.__module__.startswith("asyncio")
               for c in type(exc).__mro__)


def _is_coroutine_function(fn):
    """async def functions (also through functools.partial and bound methods); anything else
    that returns an awaitable is caught after the call by _is_awaitable."""
    while hasattr(fn, "func") and hasattr(fn, "args"):  # functools.partial
        fn = fn.func
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    return code is not None and bool(code.co_flags & 0x80)  # CO_COROUTINE


def _is_awaitable(value):
    return hasattr(value, "__await__") and not isinstance(value, type)


def _log_exception(what):
    import traceback

    sys.stderr.write("offload worker: %s:\n%s" % (what, traceback.format_exc()))
    sys.stderr.flush()


# -- entry point -----------------------------------------------------------------------------

def emit(name, data=None, receiver="all"):
    """Send an event that belongs to no job (from an event listener, say)."""
    if _current is None:
        raise RuntimeError("offload_worker.emit() works only inside a running worker")
    _current.emit(name, data, receiver)


class _ConfigError(Exception):
    pass


def _env_int(name, default, minimum):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _ConfigError("%s=%r is not an integer" % (name, raw))
    if value < minimum:
        raise _ConfigError("%s=%d is below the minimum of %d" % (name, value, minimum))
    return value


def main():
    """`python -m offload_worker`: serve the channel described by the OFFLOAD_* environment."""
    try:
        protocol = _env_int("OFFLOAD_PROTOCOL", PROTOCOL, 0)
        if protocol < PROTOCOL:
            raise _ConfigError("the supervisor speaks protocol %d (OFFLOAD_PROTOCOL) but this worker needs "
                               "protocol %d or later" % (protocol, PROTOCOL))
        fd = _env_int("OFFLOAD_CHANNEL_FD", 3, 0)
        max_frame = _env_int("OFFLOAD_MAX_FRAME", DEFAULT_MAX_FRAME, 256)
        concurrency = _env_int("OFFLOAD_CONCURRENCY", 1, 1)
        try:
            os.fstat(fd)
        except OSError:
            raise _ConfigError("the channel fd %d (OFFLOAD_CHANNEL_FD) is not open; this program is started "
                               "by an offload supervisor" % fd)
    except _ConfigError as e:
        sys.stderr.write("offload worker: %s\n" % e)
        return 2
    os.set_inheritable(fd, False)  # the jobs' own child processes must not hold the channel
    os.environ.pop("OFFLOAD_CHANNEL_FD", None)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # the supervisor captures logs line by line
    Runner(fd, os.environ.get("OFFLOAD_JOBS_DIR"), concurrency, max_frame).serve()
