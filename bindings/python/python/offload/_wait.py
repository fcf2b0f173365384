"""Waiting for a native run: blocking (the GIL released, Ctrl-C cancels the run) or awaited
(cancelling the awaiting task cancels the run). Also the small conversions every API shares."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from typing import Any, Callable, Optional, Protocol

from ._errors import InvalidArgument
from ._native import MAX_WORKERS


class Cancellable(Protocol):
    def cancel(self) -> None: ...


Start = Callable[[Callable[[str], None]], Cancellable]
"""Starts a run whose end (a JSON string) goes to the callback; returns its canceller."""


def wait_sync(start: Start) -> str:
    """Starts a run and blocks until it ends. The wait releases the GIL; an exception while
    waiting (KeyboardInterrupt) cancels the run before it propagates."""
    done = threading.Event()
    box: list[str] = []

    def on_done(answer: str) -> None:
        box.append(answer)
        done.set()

    run = start(on_done)
    try:
        done.wait()
    except BaseException:
        run.cancel()
        raise
    return box[0]


async def wait_async(start: Start) -> str:
    """Starts a run and awaits its end on the running loop. Cancelling the awaiting task
    cancels the run (a running job gets ``cancel``, then its process is killed)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[str] = loop.create_future()

    def settle(answer: str) -> None:
        if not fut.done():
            fut.set_result(answer)

    def on_done(answer: str) -> None:
        try:
            loop.call_soon_threadsafe(settle, answer)
        except RuntimeError:  # the loop is closed: nobody awaits any more
            pass

    run = start(on_done)
    try:
        return await fut
    except asyncio.CancelledError:
        run.cancel()
        raise


def ms(what: str, seconds: Optional[float]) -> Optional[int]:
    """Seconds (int or float) to whole milliseconds; ``None`` stays ``None``."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise InvalidArgument(f"{what} must be a number of seconds, not {seconds!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidArgument(f"{what} must be a finite number of seconds >= 0, not {seconds!r}")
    return int(round(seconds * 1000))


def workers(what: str, n: Optional[int], least: int = 0) -> Optional[int]:
    """A number of workers: an integer option of at most ``MAX_WORKERS`` (1024, the pool's
    own bound; ``None`` stays ``None``)."""
    n = count(what, n, least)
    if n is not None and n > MAX_WORKERS:
        raise InvalidArgument(f"{what} must be at most {MAX_WORKERS} (MAX_WORKERS), not {n!r}")
    return n


def count(what: str, n: Optional[int], least: int = 0) -> Optional[int]:
    """An integer option (``None`` stays ``None``)."""
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < least:
        raise InvalidArgument(f"{what} must be an integer >= {least}, not {n!r}")
    return n


def params_json(job: str, params: Any) -> str:
    """``params`` as JSON, or InvalidArgument naming the job."""
    try:
        return json.dumps(params, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"params of job {job!r} are not JSON: {e}", job=job) from e


def options_json(opts: dict[str, Any]) -> str:
    """Options without their ``None`` values, as JSON."""
    return json.dumps({k: v for k, v in opts.items() if v is not None})
