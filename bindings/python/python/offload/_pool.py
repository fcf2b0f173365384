"""``Pool``: resident supervised workers for the jobs of a folder (``offload_pool::ChildPool``)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import sys
import threading
from typing import Any, Callable, Literal, Optional, Union

from . import _native
from ._errors import Crashed, InvalidArgument, OffloadError, from_code, from_native, from_outcome
from ._wait import count, ms, options_json, params_json, wait_async, wait_sync, workers

PathLike = Union[str, "os.PathLike[str]"]


def settle(answer: str, job: str, crashed: type[Crashed] = Crashed) -> Any:
    """The value of a run's end (JSON from the native layer), or raises its typed error."""
    a = json.loads(answer)
    if "error" in a:
        raise from_code(a["error"]["code"], a["error"]["message"], job)
    outcome = a["outcome"]
    if outcome.get("outcome") == "succeeded":
        return outcome.get("value")
    raise from_outcome(outcome, job, a.get("attempts"), crashed)


class Pool:
    """A pool of supervised worker processes running the job files of ``jobs``.

    ``worker`` is ``"python"`` (``.py`` files, run by ``python``, default this interpreter),
    ``"node"`` (``.js`` files), or give ``program=`` for a native worker built with the Rust SDK
    (``args``: extra arguments for it).
    Durations are in seconds, sizes in bytes. Workers are recycled (replaced, their running
    runs finish first) after ``recycle_after_jobs`` runs, above ``recycle_max_rss`` resident
    bytes or ``recycle_max_heap`` bytes of C heap in use (as the worker's ``pong`` reports it:
    pings must be on), after ``recycle_max_age``, or above ``recycle_max_cpu`` percent of one
    core for ``recycle_cpu_samples`` health samples (1 s apart) in a row. An idle worker is
    pinged every ``ping_interval`` (default 5 s; ``0`` never pings) and replaced when its
    ``pong`` takes longer than ``ping_timeout`` (default 10 s; both at least 0.01 s).
    ``retries`` is how many times a run whose worker
    died, timed out or broke the protocol is tried again (``retry_on_error=True`` also retries
    runs that raised); ``None`` keeps the Rust default (3 attempts in all).

    The constructor returns once ``min`` workers are ready (``StartFailed`` otherwise). Use it
    as a context manager, or call :meth:`shutdown`.
    """

    def __init__(
        self,
        jobs: PathLike,
        *,
        worker: str = "python",
        program: Optional[PathLike] = None,
        args: Optional[list[str]] = None,
        min: int = 1,
        max: Optional[int] = None,
        concurrency: int = 1,
        algorithm: Optional[str] = None,
        spread_first: bool = False,
        timeout: Optional[float] = None,
        retries: Optional[int] = None,
        retry_on_error: bool = False,
        retry_delay: Optional[float] = None,
        memory_limit: Optional[int] = None,
        cpu_seconds: Optional[int] = None,
        recycle_after_jobs: Optional[int] = None,
        recycle_max_rss: Optional[int] = None,
        recycle_max_age: Optional[float] = None,
        recycle_max_heap: Optional[int] = None,
        recycle_max_cpu: Optional[int] = None,
        recycle_cpu_samples: Optional[int] = None,
        ping_interval: Optional[float] = None,
        ping_timeout: Optional[float] = None,
        idle_timeout: Optional[float] = None,
        kill_grace: Optional[float] = None,
        cancel_grace: Optional[float] = None,
        queue_bound: Optional[int] = None,
        fail_fast: bool = False,
        env: Optional[dict[str, str]] = None,
        start_timeout: Optional[float] = None,
        max_restarts: Optional[int] = None,
        python: Optional[str] = None,
        name: Optional[str] = None,
    ) -> None:
        if not os.path.isdir(jobs):
            raise OffloadError(f"the jobs folder {os.fspath(jobs)!r} does not exist")
        min = workers("min", min) or 0
        retries = count("retries", retries)
        config = {
            "jobs_dir": os.path.abspath(jobs),
            "worker": worker,
            "program": os.fspath(program) if program is not None else None,
            "args": [str(a) for a in args or []],
            "name": name,
            "min": min,
            "max": workers("max", max, 1),
            "concurrency": count("concurrency", concurrency, 1),
            "algorithm": algorithm,
            "spread_first": spread_first,
            "timeout_ms": ms("timeout", timeout),
            "attempts": None if retries is None else retries + 1,
            "retry_on_error": retry_on_error,
            "retry_delay_ms": ms("retry_delay", retry_delay),
            "memory_limit": count("memory_limit", memory_limit, 1),
            "cpu_seconds": count("cpu_seconds", cpu_seconds, 1),
            "recycle_after_jobs": count("recycle_after_jobs", recycle_after_jobs, 1),
            "recycle_max_rss": count("recycle_max_rss", recycle_max_rss, 1),
            "recycle_max_age_ms": ms("recycle_max_age", recycle_max_age),
            "recycle_max_heap": count("recycle_max_heap", recycle_max_heap, 1),
            "recycle_max_cpu": count("recycle_max_cpu", recycle_max_cpu, 1),
            "recycle_cpu_samples": count("recycle_cpu_samples", recycle_cpu_samples, 1),
            "ping_interval_ms": ms("ping_interval", ping_interval),
            "ping_timeout_ms": ms("ping_timeout", ping_timeout),
            "idle_timeout_ms": ms("idle_timeout", idle_timeout),
            "kill_grace_ms": ms("kill_grace", kill_grace),
            "cancel_grace_ms": ms("cancel_grace", cancel_grace),
            "queue_bound": count("queue_bound", queue_bound, 1),
            "fail_fast": fail_fast,
            "env": dict(env or {}),
            "start_timeout_ms": ms("start_timeout", start_timeout),
            "max_restarts": count("max_restarts", max_restarts),
            "python": python or os.environ.get("OFFLOAD_PYTHON") or sys.executable,
        }
        try:
            # Every progress value and event reaches its callback: a worker is read only as
            # fast as they are delivered. (Streams read only now and then, the executor's calls
            # without a watcher, have a small capacity of their own and stay out of it.)
            self._native = _native.NativePool(options_json(config), event_backpressure=True)
        except RuntimeError as e:
            raise from_native(e) from None
        self._closed = False
        self._lock = threading.Lock()

    # -- runs ---------------------------------------------------------------------------

    def _start(
        self,
        name: str,
        params: Any,
        timeout: Optional[float],
        attempts: Optional[int],
        key: Optional[str],
        worker: Optional[int],
        on_progress: Optional[Callable[[Any], object]] = None,
        on_event: Optional[Callable[[str, Any], object]] = None,
    ) -> Callable[[Callable[[str], None]], _native.NativeRun]:
        if not isinstance(name, str) or not name:
            raise OffloadError(f"a job name is a non-empty string, not {name!r}")
        p = params_json(name, params)
        opts = options_json(
            {
                "timeout_ms": ms("timeout", timeout),
                "attempts": count("attempts", attempts, 1),
                "key": key,
                "worker": None if worker is None else _pid(worker, "worker"),
            }
        )

        progress = None
        if on_progress is not None:
            report = on_progress

            def progress(data: str) -> None:
                report(json.loads(data))

        event = None
        if on_event is not None:
            tell = on_event

            def event(event_name: str, data: str) -> None:
                tell(event_name, json.loads(data))

        def start(on_done: Callable[[str], None]) -> _native.NativeRun:
            try:
                return self._native.submit(name, p, opts, on_done, False, progress, event)
            except RuntimeError as e:
                raise from_native(e, name) from None

        return start

    def run(
        self,
        name: str,
        params: Any = None,
        *,
        timeout: Optional[float] = None,
        attempts: Optional[int] = None,
        key: Optional[str] = None,
        worker: Optional[int] = None,
        on_progress: Optional[Callable[[Any], object]] = None,
        on_event: Optional[Callable[[str, Any], object]] = None,
    ) -> Any:
        """Runs job ``name`` with ``params`` (JSON) and returns its result; raises the typed
        error of any other end. Blocks without holding the GIL; Ctrl-C cancels the run.
        ``on_progress(data)`` gets each value the job reports with ``ctx.progress``, and
        ``on_event(name, data)`` each event it emits with ``ctx.emit``, in order, all before
        the run ends, on the extension's delivery thread (keep them short).

        ``key``: runs with the same key go to the same worker while it lives. ``worker``: the
        run goes to that worker only (a pid from :meth:`pids`), waits while it is busy, has one
        attempt, and raises :class:`NoSuchWorker` when that worker is not the pool's, exits or
        stops taking jobs (recycled, draining) before the run started."""
        start = self._start(name, params, timeout, attempts, key, worker, on_progress, on_event)
        return settle(wait_sync(start), name)

    async def run_async(
        self,
        name: str,
        params: Any = None,
        *,
        timeout: Optional[float] = None,
        attempts: Optional[int] = None,
        key: Optional[str] = None,
        worker: Optional[int] = None,
        on_progress: Optional[Callable[[Any], object]] = None,
        on_event: Optional[Callable[[str, Any], object]] = None,
    ) -> Any:
        """:meth:`run` for asyncio; cancelling the awaiting task cancels and kills the job."""
        start = self._start(name, params, timeout, attempts, key, worker, on_progress, on_event)
        answer = await wait_async(start)
        return settle(answer, name)

    def submit(
        self,
        name: str,
        params: Any = None,
        *,
        timeout: Optional[float] = None,
        attempts: Optional[int] = None,
        key: Optional[str] = None,
        worker: Optional[int] = None,
        on_progress: Optional[Callable[[Any], object]] = None,
        on_event: Optional[Callable[[str, Any], object]] = None,
    ) -> concurrent.futures.Future[Any]:
        """Starts a run and returns a :class:`concurrent.futures.Future` of its result.
        Cancelling the future cancels the run (and kills its worker after the cancel grace)."""
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def on_done(answer: str) -> None:
            if fut.cancelled():
                return
            try:
                value = settle(answer, name)
            except BaseException as e:
                _set(fut, exc=e)
            else:
                _set(fut, value=value)

        start = self._start(name, params, timeout, attempts, key, worker, on_progress, on_event)
        run = start(on_done)
        fut.add_done_callback(lambda f: run.cancel() if f.cancelled() else None)
        return fut

    # -- the pool -----------------------------------------------------------------------

    def pids(self) -> list[int]:
        """The live workers' pids."""
        return self._native.pids()

    def queued(self) -> int:
        """Runs waiting for a worker."""
        return self._native.queued()

    def resize(self, n: int) -> None:
        """Sets the number of workers (at most ``MAX_WORKERS``, 1024): ``min`` becomes ``n``,
        workers start or retire (idle first; a busy one finishes its runs) to match. Raises
        :class:`InvalidArgument` naming the limit for more."""
        n = workers("n", n) or 0
        try:
            self._native.resize(n)
        except RuntimeError as e:
            raise from_native(e) from None

    def health(self) -> list[dict[str, Any]]:
        """Each worker's pid, state, rss, cpu, jobs in flight and done."""
        h: list[dict[str, Any]] = json.loads(self._native.health())
        return h

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stops taking runs, lets running ones finish for ``timeout`` seconds, then kills the
        rest; returns when every worker is gone. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._native.shutdown(ms("timeout", timeout) or 0)

    def kill_worker(self, pid: int, mode: KillMode = "soft", grace: float = 5.0) -> None:
        """Kills worker ``pid``; the pool starts its replacement. ``"soft"``: the worker gets
        ``shutdown`` (no new runs; its running runs may finish within ``grace`` seconds),
        then SIGKILL. ``"hard"``: the kill notice, then SIGKILL after ``grace``; its running
        runs end ``Killed`` (retried while attempts remain). Raises :class:`NoSuchWorker`
        for a pid that is not one of the pool's workers."""
        _kill_mode(mode)
        try:
            self._native.kill_worker(_pid(pid), mode, ms("grace", grace) or 0)
        except RuntimeError as e:
            raise from_native(e) from None

    def kill_all(
        self, mode: KillMode = "soft", order: KillOrder = "parallel", grace: float = 5.0
    ) -> None:
        """Kills every worker (``mode`` and ``grace`` as in :meth:`kill_worker`), all at once
        (``"parallel"``) or one after the other (``"sequence"``: the next once the previous is
        gone), and ends the pool: queued runs fail with :class:`ShuttingDown`. Returns when no worker
        is left."""
        _kill_mode(mode)
        if order not in ("parallel", "sequence"):
            raise InvalidArgument(f'order must be "parallel" or "sequence", not {order!r}')
        with self._lock:
            self._closed = True
        try:
            self._native.kill_all(mode, order, ms("grace", grace) or 0)
        except RuntimeError as e:
            raise from_native(e) from None

    def kill(self) -> None:
        """Kills every worker at once (their runs end ``Killed``)."""
        with self._lock:
            self._closed = True
        self._native.kill()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


KillMode = Literal["soft", "hard"]
"""How :meth:`Pool.kill_worker` and :meth:`Pool.kill_all` stop a worker."""
KillOrder = Literal["parallel", "sequence"]
"""How :meth:`Pool.kill_all` goes through the workers."""


def _kill_mode(mode: str) -> None:
    if mode not in ("soft", "hard"):
        raise InvalidArgument(f'mode must be "soft" or "hard", not {mode!r}')


def _pid(pid: int, what: str = "pid") -> int:
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**32:
        raise InvalidArgument(f"{what} must be a process id (a positive integer), not {pid!r}")
    return pid


def _set(
    fut: concurrent.futures.Future[Any],
    value: Any = None,
    exc: Optional[BaseException] = None,
) -> None:
    """Settles ``fut`` unless it was cancelled meanwhile."""
    try:
        if not fut.done():
            if fut.running() or fut.set_running_or_notify_cancel():
                if exc is not None:
                    fut.set_exception(exc)
                else:
                    fut.set_result(value)
    except concurrent.futures.InvalidStateError:
        pass
