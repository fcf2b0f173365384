"""``ChildJob`` and ``run_job``: one job in one fresh process (``offload_process::ChildJob``)."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, Callable, Optional

from . import _native
from ._errors import OffloadError, from_native
from ._pool import PathLike, settle
from ._wait import count, ms, options_json, params_json, wait_async, wait_sync


class _Kill:
    """Cancels a fresh process: SIGTERM to its group, SIGKILL after the grace."""

    def __init__(self, proc: _native.NativeProcess, grace_ms: int) -> None:
        self.proc = proc
        self.grace_ms = grace_ms

    def cancel(self) -> None:
        self.proc.kill("SIGTERM", self.grace_ms)


class ChildJob:
    """Runs each job in a new process. ``jobs`` is the folder names are resolved in (a name
    that would leave it is refused with ``JobNotFound``); a path given to :meth:`run` with
    ``by_path=True`` may be anywhere. ``kill_grace``: seconds between SIGTERM and SIGKILL when a
    run is cancelled or times out."""

    def __init__(
        self,
        jobs: Optional[PathLike] = None,
        *,
        kill_grace: float = 1.0,
        python: Optional[str] = None,
    ) -> None:
        self._jobs = os.path.abspath(jobs) if jobs is not None else os.getcwd()
        self._grace = ms("kill_grace", kill_grace) or 0
        config = {
            "jobs_dir": self._jobs,
            "kill_grace_ms": self._grace,
            "python": python or os.environ.get("OFFLOAD_PYTHON") or sys.executable,
        }
        self._native = _native.NativeChildJob(options_json(config))

    def _start(
        self,
        job: PathLike,
        by_path: bool,
        params: Any,
        timeout: Optional[float],
        memory_limit: Optional[int],
        cpu_seconds: Optional[int],
        env: Optional[dict[str, str]],
    ) -> tuple[str, Callable[[Callable[[str], None]], _Kill]]:
        name = os.fspath(job)
        if by_path:
            name = os.path.abspath(name)
        p = params_json(name, params)
        opts = options_json(
            {
                "timeout_ms": ms("timeout", timeout),
                "memory_limit": count("memory_limit", memory_limit, 1),
                "cpu_seconds": count("cpu_seconds", cpu_seconds, 1),
                "env": dict(env) if env else None,
            }
        )

        def start(on_done: Callable[[str], None]) -> _Kill:
            try:
                proc = self._native.exec(name, by_path, p, opts, on_done)
            except RuntimeError as e:
                raise from_native(e, name) from None
            return _Kill(proc, self._grace)

        return name, start

    def run(
        self,
        job: PathLike,
        params: Any = None,
        *,
        by_path: bool = False,
        timeout: Optional[float] = None,
        memory_limit: Optional[int] = None,
        cpu_seconds: Optional[int] = None,
        env: Optional[dict[str, str]] = None,
    ) -> Any:
        """Runs ``job`` in a fresh process and returns its result (typed errors otherwise)."""
        name, start = self._start(job, by_path, params, timeout, memory_limit, cpu_seconds, env)
        return settle(wait_sync(start), name)

    async def run_async(
        self,
        job: PathLike,
        params: Any = None,
        *,
        by_path: bool = False,
        timeout: Optional[float] = None,
        memory_limit: Optional[int] = None,
        cpu_seconds: Optional[int] = None,
        env: Optional[dict[str, str]] = None,
    ) -> Any:
        """:meth:`run` for asyncio; cancelling the awaiting task kills the process."""
        name, start = self._start(job, by_path, params, timeout, memory_limit, cpu_seconds, env)
        return settle(await wait_async(start), name)

    def pids(self) -> list[int]:
        """The live processes' pids."""
        return self._native.pids()

    def kill_all(self) -> None:
        """Kills every process of this ChildJob."""
        self._native.kill_all()


_default: Optional[ChildJob] = None
_default_lock = threading.Lock()


def _shared() -> ChildJob:
    global _default
    with _default_lock:
        if _default is None:
            _default = ChildJob()
        return _default


def _is_path(job: PathLike) -> bool:
    s = os.fspath(job)
    return os.path.isabs(s) or s.startswith(".") or os.path.isfile(s)


def run_job(
    job: PathLike,
    params: Any = None,
    *,
    jobs: Optional[PathLike] = None,
    timeout: Optional[float] = None,
    memory_limit: Optional[int] = None,
    cpu_seconds: Optional[int] = None,
    env: Optional[dict[str, str]] = None,
) -> Any:
    """Runs one job in one fresh process and returns its result.

    ``job`` is a job file's path, or with ``jobs=`` a name in that folder (``"images/resize"``
    for ``jobs/images/resize.py``; names that would leave the folder raise ``JobNotFound``).
    """
    if jobs is not None:
        return ChildJob(jobs).run(
            job,
            params,
            timeout=timeout,
            memory_limit=memory_limit,
            cpu_seconds=cpu_seconds,
            env=env,
        )
    if not _is_path(job):
        raise OffloadError(f"no job file {os.fspath(job)!r}: give a path, or a name with jobs=")
    return _shared().run(
        job,
        params,
        by_path=True,
        timeout=timeout,
        memory_limit=memory_limit,
        cpu_seconds=cpu_seconds,
        env=env,
    )


async def run_job_async(
    job: PathLike,
    params: Any = None,
    *,
    jobs: Optional[PathLike] = None,
    timeout: Optional[float] = None,
    memory_limit: Optional[int] = None,
    cpu_seconds: Optional[int] = None,
    env: Optional[dict[str, str]] = None,
) -> Any:
    """:func:`run_job` for asyncio; cancelling the awaiting task kills the process."""
    if jobs is not None:
        child, by_path = ChildJob(jobs), False
    elif _is_path(job):
        child, by_path = _shared(), True
    else:
        raise OffloadError(f"no job file {os.fspath(job)!r}: give a path, or a name with jobs=")
    return await child.run_async(
        job,
        params,
        by_path=by_path,
        timeout=timeout,
        memory_limit=memory_limit,
        cpu_seconds=cpu_seconds,
        env=env,
    )
