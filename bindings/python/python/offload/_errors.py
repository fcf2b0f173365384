"""Typed outcomes: every failure is an :class:`OffloadError` subclass that names the job.

A run's end arrives from the native layer as a Rust ``Outcome`` (a dict tagged ``outcome``);
:func:`from_outcome` turns a bad one into the matching exception. A refusal (the pool would not
take the run) arrives as ``{"code", "message"}`` and :func:`from_code` maps it.
"""

from __future__ import annotations

import signal as _signal
from typing import Any, Optional

__all__ = [
    "OffloadError",
    "JobFailed",
    "TimedOut",
    "Cancelled",
    "Killed",
    "Crashed",
    "WorkerCrashed",
    "ResourceLimit",
    "ProtocolError",
    "JobNotFound",
    "InvalidJob",
    "InvalidArgument",
    "QueueFull",
    "ShuttingDown",
    "PoolGone",
    "StartFailed",
    "SpawnFailed",
    "ParamsTooLarge",
    "UnpicklableError",
]


class OffloadError(Exception):
    """Base class of offload's errors.

    ``code`` is the Rust outcome or refusal; ``job`` the job's name; ``outcome`` the raw
    outcome dict (or ``None`` for a refusal); ``attempts`` each attempt (a dict with ``pid`` and
    ``outcome``); ``pid`` the process of the last attempt, when there was one.
    """

    code = "Error"

    def __init__(
        self,
        message: str,
        *,
        job: Optional[str] = None,
        outcome: Optional[dict[str, Any]] = None,
        attempts: Optional[list[dict[str, Any]]] = None,
        pid: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.job = job
        self.outcome = outcome
        self.attempts = attempts or []
        if pid is None and self.attempts:
            last = self.attempts[-1].get("pid")
            pid = last if isinstance(last, int) else None
        self.pid = pid


class JobFailed(OffloadError):
    """The job raised: ``error_name`` is its class, ``job_stack`` its traceback."""

    code = "Failed"

    def __init__(
        self,
        message: str,
        *,
        error_name: str = "Error",
        job_stack: Optional[str] = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.error_name = error_name
        self.job_stack = job_stack

    def __str__(self) -> str:
        if self.job_stack:
            return f"{self.message}\n\nthe job's traceback:\n{self.job_stack}"
        return self.message


class TimedOut(OffloadError):
    """The job ran past its timeout; it was cancelled, then its process group killed."""

    code = "TimedOut"


class Cancelled(OffloadError):
    """The job was cancelled on request."""

    code = "Cancelled"


class Killed(OffloadError):
    """The job's process was killed on request; ``signal`` is the signal that ended it."""

    code = "Killed"

    def __init__(self, message: str, *, signal: Optional[int] = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.signal = signal


class Crashed(OffloadError):
    """The job's process died by itself: a signal nobody sent (``signal``: segfault, abort,
    an outside SIGKILL, the OOM killer) or an exit without an answer (``exit_code``)."""

    code = "Crashed"

    def __init__(
        self,
        message: str,
        *,
        signal: Optional[int] = None,
        exit_code: Optional[int] = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.signal = signal
        self.exit_code = exit_code


class WorkerCrashed(Crashed):
    """An executor's worker died while running this future's call (only this future fails;
    the executor starts another worker)."""


class ResourceLimit(OffloadError):
    """The job ran into one of its limits; ``which`` is ``"memory"``, ``"cpu"`` or
    ``"open_files"``."""

    code = "ResourceLimit"

    def __init__(self, message: str, *, which: str = "memory", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.which = which


class ProtocolError(OffloadError):
    """The worker broke the protocol and was killed."""

    code = "ProtocolError"


class JobNotFound(OffloadError):
    """No such job in the jobs folder (or the name would leave it)."""

    code = "JobNotFound"


class InvalidJob(OffloadError):
    """The job's name or file is not acceptable."""

    code = "InvalidJob"


class InvalidArgument(OffloadError, ValueError):
    """An option or parameter is out of range or of the wrong type."""

    code = "InvalidArgument"


class QueueFull(OffloadError):
    """The pool's queue is full and the pool was told to fail fast."""

    code = "QueueFull"


class ShuttingDown(OffloadError):
    """The pool is shutting down and takes no new runs."""

    code = "ShuttingDown"


class PoolGone(OffloadError):
    """The pool's actor is gone."""

    code = "PoolGone"


class NoSuchWorker(OffloadError):
    """A pid that is not one of the pool's workers: given to ``kill_worker``, or a run pinned
    (``worker=``) to a worker that is not the pool's, or that exited or stopped taking jobs
    before the run started."""

    code = "NoSuchWorker"


class StartFailed(OffloadError):
    """The pool could not start its first workers."""

    code = "StartFailed"


class SpawnFailed(OffloadError):
    """The process could not be started."""

    code = "SpawnFailed"


class ParamsTooLarge(OffloadError):
    """The params do not fit in one frame."""

    code = "ParamsTooLarge"


class UnpicklableError(OffloadError, TypeError):
    """The callable or an argument given to the executor cannot be pickled (a lambda, a local
    function, an open file…); raised by ``submit`` at once, nothing was started."""

    code = "Unpicklable"


_BY_CODE: dict[str, type[OffloadError]] = {
    c.code: c
    for c in (
        JobNotFound,
        InvalidJob,
        InvalidArgument,
        QueueFull,
        ShuttingDown,
        PoolGone,
        NoSuchWorker,
        StartFailed,
        SpawnFailed,
        ParamsTooLarge,
    )
}


def signal_name(n: int) -> str:
    """``SIGSEGV`` for 11, ``signal 64`` for an unknown number."""
    try:
        return _signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def from_code(code: str, message: str, job: Optional[str] = None) -> OffloadError:
    """The error of a refusal ``code`` (an unknown code gives a plain OffloadError)."""
    cls = _BY_CODE.get(code, OffloadError)
    err = cls(message, job=job)
    if cls is OffloadError:
        err.code = code
    return err


def from_native(e: RuntimeError, job: Optional[str] = None) -> OffloadError:
    """The error of a native ``"[Code] text"`` exception."""
    text = str(e)
    if text.startswith("[") and "] " in text:
        code, message = text[1:].split("] ", 1)
        return from_code(code, message, job)
    return OffloadError(text, job=job)


def from_outcome(
    outcome: dict[str, Any],
    job: str,
    attempts: Optional[list[dict[str, Any]]] = None,
    crashed: type[Crashed] = Crashed,
) -> OffloadError:
    """The exception for a run that did not succeed (``crashed``: the class for a death)."""
    kind = outcome.get("outcome")
    kw: dict[str, Any] = {"job": job, "outcome": outcome, "attempts": attempts}
    if kind in ("failed", "failed_no_retry"):
        name = str(outcome.get("name") or "Error")
        message = str(outcome.get("message") or "")
        if name == "ShuttingDown" and not outcome.get("stack"):
            # Never ran: the pool shut down or was killed while it waited (as a run that
            # comes after: the same exception).
            return ShuttingDown(f"job {job!r}: {message}", **kw)
        if name == "NoSuchWorker" and not outcome.get("stack"):
            # Never ran: pinned to a worker the pool does not have (any more).
            return NoSuchWorker(f"job {job!r}: {message}", **kw)
        return JobFailed(
            f"job {job!r} raised {name}: {message}",
            error_name=name,
            job_stack=outcome.get("stack"),
            **kw,
        )
    if kind == "timed_out":
        return TimedOut(f"job {job!r} timed out and was stopped", **kw)
    if kind == "cancelled":
        return Cancelled(f"job {job!r} was cancelled", **kw)
    if kind == "killed":
        sig = int(outcome.get("signal") or 0)
        return Killed(f"job {job!r} was killed ({signal_name(sig)})", signal=sig, **kw)
    if kind == "crashed":
        sig = int(outcome.get("signal") or 0)
        return crashed(
            f"the process running job {job!r} died from {signal_name(sig)}", signal=sig, **kw
        )
    if kind == "exited":
        code = int(outcome.get("code") or 0)
        return crashed(
            f"the process running job {job!r} exited with status {code} without answering",
            exit_code=code,
            **kw,
        )
    if kind == "resource_limit":
        which = str(outcome.get("which") or "memory")
        return ResourceLimit(f"job {job!r} ran into its {which} limit", which=which, **kw)
    if kind == "protocol_error":
        return ProtocolError(
            f"the worker of job {job!r} broke the protocol: {outcome.get('message')}", **kw
        )
    return OffloadError(f"job {job!r} ended with {outcome!r}", **kw)
