"""``ProcessPoolExecutor``: a ``concurrent.futures.Executor`` on a supervised pool of Python
workers, where a worker's death fails only its own future."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import pickle
import sys
import threading
import time
from typing import Any, Callable, Iterable, Optional, TypeVar

from . import _native
from ._errors import InvalidArgument, OffloadError, TimedOut, UnpicklableError, WorkerCrashed
from ._native import MAX_WORKERS
from ._pool import KillMode, Pool, _set, settle
from ._wait import count, ms, options_json, workers

T = TypeVar("T")

_JOBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_jobs")
_WORKER = os.path.join(_JOBS, "worker.py")


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, set as that exception's
    ``__cause__`` (as the standard library's executor does)."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f'\n"""\n{self.tb}"""'


def _describe(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or repr(fn)
    return f"{module}.{name}" if module else str(name)


class ProcessPoolExecutor(concurrent.futures.Executor):
    """Runs picklable callables in supervised Python worker processes.

    Like :class:`concurrent.futures.ProcessPoolExecutor`: ``submit``, ``map``,
    ``shutdown(wait, cancel_futures)``, the context manager and ``loop.run_in_executor``
    behave as the standard library defines them; the callable and its arguments are pickled
    (functions by reference: they must be importable by the workers, which get this process's
    ``sys.path``; functions defined in ``__main__`` of a script are not).

    What it adds: a worker that dies (a signal, ``os._exit``, the OOM killer) fails only the
    future it was running, with :class:`WorkerCrashed`; the pool replaces the worker and the
    executor keeps working. ``timeout`` (seconds, for every call) or
    :meth:`submit_with`'s ``timeout=`` kill a call that runs too long (:class:`TimedOut`).
    ``memory_limit`` (bytes of address space) and ``cpu_seconds`` limit each worker;
    ``max_tasks_per_child``, ``recycle_max_rss`` (bytes) and ``recycle_max_age`` (seconds)
    replace workers; ``retries`` re-runs a call whose worker died (default 0: the standard
    library never re-runs a call). An unpicklable callable or argument raises
    :class:`UnpicklableError` from ``submit`` at once.

    Cancelling a future that has not started (``future.cancel()``, ``cancel_futures=True``)
    removes its call from the queue; a running call cannot be cancelled through its future,
    as in the standard library.
    """

    def __init__(
        self,
        max_workers: Optional[int] = None,
        *,
        max_tasks_per_child: Optional[int] = None,
        timeout: Optional[float] = None,
        memory_limit: Optional[int] = None,
        cpu_seconds: Optional[int] = None,
        recycle_max_rss: Optional[int] = None,
        recycle_max_age: Optional[float] = None,
        retries: int = 0,
        min_workers: Optional[int] = None,
        start_timeout: Optional[float] = None,
        python: Optional[str] = None,
        prefetch: int = 2,
    ) -> None:
        if max_workers is None:
            max_workers = min(len(os.sched_getaffinity(0)) or 1, MAX_WORKERS)
        workers("max_workers", max_workers, 1)
        count("prefetch", prefetch, 1)
        if min_workers is None:
            min_workers = max_workers if prefetch > 1 else 1
        count("min_workers", min_workers, 0)
        if prefetch > 1 and min_workers < max_workers:
            raise InvalidArgument(
                f"prefetch={prefetch} starts every worker at once: min_workers ({min_workers}) "
                f"must be max_workers ({max_workers}), or use prefetch=1 to grow on demand"
            )
        self._timeout = ms("timeout", timeout)
        self._pool = Pool(
            _JOBS,
            program=python or os.environ.get("OFFLOAD_PYTHON") or sys.executable,
            args=["-u", _WORKER],
            concurrency=prefetch,
            algorithm="minimumConnection",
            spread_first=True,
            name="executor",
            min=min(min_workers, max_workers),
            max=max_workers,
            retries=retries,
            memory_limit=memory_limit,
            cpu_seconds=cpu_seconds,
            recycle_after_jobs=max_tasks_per_child,
            recycle_max_rss=recycle_max_rss,
            recycle_max_age=recycle_max_age,
            # A call cancelled while it waits in a worker (prefetch) is dropped by the worker,
            # which reads its frames at most _GIVE_BACK_AFTER (20 ms) apart even during a call;
            # with no grace the pool killed the worker, and the call running in it, at once.
            cancel_grace=0.25,
            kill_grace=1.0,
            start_timeout=start_timeout,
            env={"OFFLOAD_EXECUTOR_PATH": os.pathsep.join(p for p in sys.path if p)},
        )
        self._native = self._pool._native
        self._lock = threading.Lock()
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._shutdown = False

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        """Schedules ``fn(*args, **kwargs)``; returns its future."""
        return self.submit_with(fn, args, kwargs)

    def submit_with(
        self,
        fn: Callable[..., T],
        args: Iterable[Any] = (),
        kwargs: Optional[dict[str, Any]] = None,
        *,
        timeout: Optional[float] = None,
        on_progress: Optional[Callable[[Any], object]] = None,
    ) -> concurrent.futures.Future[T]:
        """:meth:`submit` with options: ``timeout`` (seconds, from the moment the call begins in
        its worker) kills the call's worker when the call runs longer (the future raises
        :class:`TimedOut`; the executor's own ``timeout`` applies when this is ``None``).
        ``on_progress(data)`` gets each value the call reports with :func:`offload.progress`,
        in order, all before the future is done, on the extension's delivery thread (keep it
        short)."""
        call = (fn, tuple(args), dict(kwargs or {}))
        try:
            data = pickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:
            raise UnpicklableError(
                f"cannot send {_describe(fn)} to a worker: {type(e).__name__}: {e}"
            ) from e
        timeout_ms = ms("timeout", timeout) if timeout is not None else self._timeout
        fut: _CallFuture[T] = _CallFuture()
        fut._offload_name = fn
        progress = None
        if on_progress is not None:
            report = on_progress

            def progress(value: str) -> None:
                report(json.loads(value))

        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._pending.add(fut)
            run = self._native.call(
                base64.b64encode(data).decode("ascii"), fut._offload_done, timeout_ms, progress
            )
        fut.attach(run, self)
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Takes no more calls; with ``cancel_futures`` cancels the calls not started yet;
        with ``wait`` returns once every pending future is done and the workers are gone,
        else the workers stop in the background once the pending calls are done."""
        with self._lock:
            self._shutdown = True
            pending = list(self._pending)
        if cancel_futures:
            for f in pending:
                f.cancel()
        if wait:
            self._finish(pending)
        else:
            threading.Thread(
                target=self._finish, args=(pending,), name="offload-executor-shutdown", daemon=True
            ).start()

    def _finish(self, pending: list[concurrent.futures.Future[Any]]) -> None:
        concurrent.futures.wait(pending)
        self._pool.shutdown()

    def pids(self) -> list[int]:
        """The live workers' pids."""
        return self._pool.pids()

    def kill_worker(self, pid: int, mode: KillMode = "soft", grace: float = 5.0) -> None:
        """Kills worker ``pid`` (:meth:`Pool.kill_worker`); the executor starts its replacement.
        ``"soft"``: the worker runs the calls it holds, then exits (SIGKILL after ``grace``
        seconds). ``"hard"``: SIGKILL after ``grace``; its running call fails with
        :class:`Killed`, the calls only waiting in it run on another worker. Raises
        :class:`NoSuchWorker` for a pid that is not one of its workers."""
        self._pool.kill_worker(pid, mode, grace)


class _CallFuture(concurrent.futures.Future[T]):
    """A call's future: it is running once the pool sent the call to a worker (the native
    run's ``started()``, read when asked: no callback per start). Cancelling it before then
    removes the call from the queue; after, ``cancel()`` returns False, as the standard
    library's. ``result()`` and ``exception()`` wait in the extension without the GIL and
    settle the future themselves when the end comes to them (``src/handoff.rs``); other
    ends are settled by the delivery thread."""

    _run: Optional[_native.NativeRun] = None
    _executor: Optional[ProcessPoolExecutor] = None
    _offload_name: Any = None
    _told_cancelled = False

    def attach(self, run: _native.NativeRun, executor: ProcessPoolExecutor) -> None:
        self._run = run
        self._executor = executor

    def _offload_done(self, kind: int, payload: str, extra: Optional[str]) -> None:
        """The native end of the call (``calls.rs``): 0 a value, 1 what it raised, 2 any other
        end (JSON; ``extra`` is ``"timeout"`` when its timeout cancelled it)."""
        ex = self._executor
        if ex is not None:
            with ex._lock:
                ex._pending.discard(self)
        if self.cancelled():
            return
        try:
            if kind == 0:
                value = pickle.loads(base64.b64decode(payload))
            elif kind == 1:
                _raise_remote(payload, extra or "", self._offload_name)
            else:
                value = _other_end(payload, extra, self._offload_name)
        except BaseException as e:
            _set(self, exc=e)
        else:
            _set(self, value=value)

    def _sync(self) -> None:
        run = self._run
        if run is not None and run.started() and not super().running() and not self.done():
            try:
                self.set_running_or_notify_cancel()
            except RuntimeError:  # settled or started meanwhile
                pass

    def running(self) -> bool:
        self._sync()
        return super().running()

    def _take(self, timeout: Optional[float]) -> Optional[float]:
        """Waits in the extension for the call's end and settles the future from this thread
        (``handoff.rs``: no hop through the delivery thread). Returns what is left of
        ``timeout``."""
        run = self._run
        if run is None or self.done():
            return timeout
        start = time.monotonic()
        end = run.take_end(timeout)
        if end is not None:
            self._offload_done(*end)
        if timeout is None:
            return None
        return max(0.0, timeout - (time.monotonic() - start))

    def result(self, timeout: Optional[float] = None) -> T:
        return super().result(self._take(timeout))

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        return super().exception(self._take(timeout))

    def cancel(self) -> bool:
        self._sync()
        if super().cancel():
            run = self._run
            if run is not None:
                run.cancel()
            self._notify_cancelled()
            return True
        return False

    def _notify_cancelled(self) -> None:
        """Tells the waiters of ``concurrent.futures.wait`` (``shutdown(wait=True)`` among them)
        that this future is cancelled: they count a future as done only once it is
        ``CANCELLED_AND_NOTIFIED``, which the standard library's executors set when their worker
        dequeues the cancelled call. Here the call leaves the queue at ``cancel()``, so the
        waiters hear of it then; without this a ``wait`` on it blocked for ever. Once only:
        a second notice would be logged as an error by ``concurrent.futures``."""
        with _NOTIFY:
            if self._told_cancelled:
                return
            self._told_cancelled = True
        self.set_running_or_notify_cancel()


_NOTIFY = threading.Lock()


def _raise_remote(payload: str, tb: str, fn: Any) -> None:
    """Raises what the call raised, with the worker's traceback as its cause."""
    exc = pickle.loads(base64.b64decode(payload))
    if isinstance(exc, BaseException):
        exc.__cause__ = RemoteTraceback(tb)
        raise exc
    raise OffloadError(f"the call {_describe(fn)} raised {exc!r}", job=_describe(fn))


def _other_end(answer: str, why: Optional[str], fn: Any) -> Any:
    """Raises the typed error of a call that ended without its own answer (a crash, a
    timeout, a refusal)."""
    name = _describe(fn)
    if why == "timeout":
        a = json.loads(answer)
        raise TimedOut(
            f"the call {name} ran past its timeout; its worker was killed",
            job=name,
            outcome=a.get("outcome"),
            attempts=a.get("attempts"),
        )
    reply = settle(answer, name, WorkerCrashed)
    raise OffloadError(f"the executor's worker answered {reply!r}", job=name)


def progress(data: Any) -> bool:
    """Reports ``data`` (JSON) as the progress of the :class:`ProcessPoolExecutor` call that
    runs in this process: the call's ``on_progress`` (:meth:`ProcessPoolExecutor.submit_with`)
    gets it, in order, before the call's future is done. Returns False (and does nothing)
    outside an executor's worker, or from a thread after its call returned; raises
    ``TypeError`` when ``data`` is not JSON."""
    hook = getattr(sys.modules.get("__main__"), "_offload_progress", None)
    if hook is None:
        return False
    return bool(hook(data))
