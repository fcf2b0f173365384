"""The worker's control side (docs/protocol.md): flow control (``busy()`` / ``ready()``, as
load-process-manager's worker.busy() / worker.ready()), the heap a ``pong`` reports, and the
hooks of a soft kill (``shutdown``: ``on_shutdown``) and a hard kill (the ``kill`` notice:
``on_hard_kill``).

The heap is the C allocator's (glibc ``mallinfo2``: bytes in use and bytes reserved, arenas
plus mmapped blocks), which is where CPython's objects live; ``tracemalloc`` is not needed (it
costs every allocation). Elsewhere than glibc no heap is reported.
"""

import sys
import threading
import time

_writer = None  # the runner's Writer, once it serves
_loop_getter = None  # the runner's asyncio loop, for async hooks
_shutdown_hooks = []
_kill_hooks = []
_lock = threading.Lock()


def attach(writer, loop_getter):
    """Called by the runner when it starts serving."""
    global _writer, _loop_getter
    _writer = writer
    _loop_getter = loop_getter


def _send(frame):
    if _writer is None:
        raise RuntimeError("offload_worker: flow control works only inside a running worker")
    _writer.send(frame)


def busy():
    """Flow control: the supervisor sends no new job to this worker until ready()."""
    _send({"type": "busy"})


def ready():
    """Flow control: take jobs again after busy()."""
    _send({"type": "ready"})


def on_shutdown(fn):
    """Run ``fn()`` (a function or an ``async def``) when the supervisor asks this worker to stop
    gracefully (``shutdown``, SIGTERM): at once, on a thread of its own, while running jobs
    finish. The shutdown's ack and the exit wait for every hook and every job, for the grace (at
    least 1 s); a hook still running then is abandoned. Returns a function removing the hook."""
    if not callable(fn):
        raise TypeError("on_shutdown(fn): fn must be callable")
    with _lock:
        _shutdown_hooks.append(fn)
    return lambda: _remove(_shutdown_hooks, fn)


def on_hard_kill(fn):
    """Run ``fn()`` on the supervisor's hard-kill notice (``kill``), before SIGKILL: short,
    synchronous work only (the process exits right after). Returns a function removing it."""
    if not callable(fn):
        raise TypeError("on_hard_kill(fn): fn must be callable")
    with _lock:
        _kill_hooks.append(fn)
    return lambda: _remove(_kill_hooks, fn)


def _remove(hooks, fn):
    with _lock:
        if fn in hooks:
            hooks.remove(fn)


def _report(what, exc):
    try:
        sys.stderr.write("offload worker: %s failed: %s: %s\n" % (what, type(exc).__name__, exc))
        sys.stderr.flush()
    except Exception:
        pass


def _run_hook(fn):
    try:
        result = fn()
        if hasattr(result, "__await__") and _loop_getter is not None:
            import asyncio

            async def wait():
                return await result

            asyncio.run_coroutine_threadsafe(wait(), _loop_getter()).result()
    except BaseException as e:  # a hook's failure never stops the shutdown
        _report("a shutdown hook", e)


def start_shutdown_hooks():
    """Starts every shutdown hook on a thread of its own; returns the threads."""
    with _lock:
        hooks = list(_shutdown_hooks)
    threads = []
    for fn in hooks:
        t = threading.Thread(target=_run_hook, args=(fn,), name="offload-shutdown-hook", daemon=True)
        t.start()
        threads.append(t)
    return threads


def join_hooks(threads, end):
    """Waits for the hook threads until ``end`` (time.monotonic()); the rest are abandoned."""
    for t in threads:
        remaining = end - time.monotonic()
        if remaining <= 0:
            break
        t.join(min(remaining, threading.TIMEOUT_MAX))
    if any(t.is_alive() for t in threads):
        try:
            sys.stderr.write("offload worker: a shutdown hook did not finish within the grace; abandoned\n")
            sys.stderr.flush()
        except Exception:
            pass


def run_kill_hooks():
    with _lock:
        hooks = list(_kill_hooks)
    for fn in hooks:
        try:
            fn()
        except BaseException as e:
            _report("a hard-kill hook", e)


_MALLINFO2 = []  # [fn or None] once looked up: ctypes is loaded at the first ping only


def _mallinfo2():
    if _MALLINFO2:
        return _MALLINFO2[0]
    fn = None
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            class MallInfo2(ctypes.Structure):
                _fields_ = [(name, ctypes.c_size_t) for name in (
                    "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                    "uordblks", "fordblks", "keepcost")]

            fn = ctypes.CDLL("libc.so.6").mallinfo2  # glibc >= 2.33; no subprocess lookup
            fn.restype = MallInfo2
            fn.argtypes = []
        except (OSError, AttributeError, ImportError):
            fn = None
    _MALLINFO2.append(fn)
    return fn


def heap():
    """(bytes in use, bytes reserved) of the C heap, or None where glibc does not tell."""
    fn = _mallinfo2()
    if fn is None:
        return None
    m = fn()
    return (m.uordblks + m.hblkhd, m.arena + m.hblkhd)


def pong(ping_id):
    frame = {"type": "pong", "id": ping_id}
    h = heap()
    if h is not None:
        frame["heap_used"], frame["heap_total"] = h
    return frame
