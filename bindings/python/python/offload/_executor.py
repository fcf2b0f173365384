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
from typing import Any, Callable, Iterable, Optional, TypeVar

from . import _native
from ._errors import OffloadError, UnpicklableError, WorkerCrashed, from_native
from ._pool import Pool, _set, settle
from ._wait import count, ms, options_json

T = TypeVar("T")

_JOBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_jobs")


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
        min_workers: int = 1,
        start_timeout: Optional[float] = None,
        python: Optional[str] = None,
    ) -> None:
        if max_workers is None:
            max_workers = len(os.sched_getaffinity(0)) or 1
        count("max_workers", max_workers, 1)
        self._timeout = ms("timeout", timeout)
        self._pool = Pool(
            _JOBS,
            name="executor",
            min=min(min_workers, max_workers),
            max=max_workers,
            retries=retries,
            memory_limit=memory_limit,
            cpu_seconds=cpu_seconds,
            recycle_after_jobs=max_tasks_per_child,
            recycle_max_rss=recycle_max_rss,
            recycle_max_age=recycle_max_age,
            cancel_grace=0.0,
            kill_grace=1.0,
            start_timeout=start_timeout,
            env={"OFFLOAD_EXECUTOR_PATH": os.pathsep.join(p for p in sys.path if p)},
            python=python,
        )
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
    ) -> concurrent.futures.Future[T]:
        """:meth:`submit` with options: ``timeout`` (seconds) kills the call's worker when the
        call runs longer (the future raises :class:`TimedOut`; the executor's own ``timeout``
        applies when this is ``None``)."""
        call = (fn, tuple(args), dict(kwargs or {}))
        try:
            data = pickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:
            raise UnpicklableError(
                f"cannot send {_describe(fn)} to a worker: {type(e).__name__}: {e}"
            ) from e
        timeout_ms = ms("timeout", timeout) if timeout is not None else self._timeout
        params = json.dumps({"call": base64.b64encode(data).decode("ascii")})
        opts = options_json({"timeout_ms": timeout_ms})
        fut: _CallFuture[T] = _CallFuture()
        name = _describe(fn)

        def on_done(answer: str) -> None:
            with self._lock:
                self._pending.discard(fut)
            if fut.cancelled():
                return
            try:
                value = _result(answer, name)
            except BaseException as e:
                _set(fut, exc=e)
            else:
                _set(fut, value=value)

        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._pending.add(fut)
            try:
                run = self._pool._native.submit("call", params, opts, on_done, True)
            except RuntimeError as e:
                self._pending.discard(fut)
                raise from_native(e, name) from None
        fut.attach(run)
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


class _CallFuture(concurrent.futures.Future[T]):
    """A call's future: it is running once the pool sent the call to a worker (the native
    run's ``started()``, read when asked: no callback per start). Cancelling it before then
    removes the call from the queue; after, ``cancel()`` returns False, as the standard
    library's."""

    _run: Optional[_native.NativeRun] = None

    def attach(self, run: _native.NativeRun) -> None:
        self._run = run
        self.add_done_callback(lambda f: run.cancel() if f.cancelled() else None)

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

    def cancel(self) -> bool:
        self._sync()
        return super().cancel()


def _result(answer: str, name: str) -> Any:
    """A call's value, or raises what the call raised (with the worker's traceback as its
    cause), or the typed error of the worker's end."""
    reply = settle(answer, name, WorkerCrashed)
    if not isinstance(reply, dict):
        raise OffloadError(f"the executor's job answered {reply!r}", job=name)
    if "value" in reply:
        return pickle.loads(base64.b64decode(reply["value"]))
    exc = pickle.loads(base64.b64decode(reply["error"]))
    if isinstance(exc, BaseException):
        exc.__cause__ = RemoteTraceback(str(reply.get("traceback", "")))
        raise exc
    raise OffloadError(f"the call {name} raised {exc!r}", job=name)
