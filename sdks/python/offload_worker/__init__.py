"""offload_worker: run Python job files as an offload worker (standard library only).

A job is a .py file in the jobs folder exporting ``handle(params, ctx)`` (a plain function or
an ``async def``); the supervisor starts ``python3 -m offload_worker``. See README.md.
"""

from ._context import Context
from ._control import busy, on_hard_kill, on_shutdown, ready
from ._errors import (
    Busy,
    Cancelled,
    DeadlineExceeded,
    FrameTooLarge,
    JobNotFound,
    NonRetryableError,
    NoSuchFunction,
    ShuttingDown,
    StreamClosed,
    StreamStalled,
)
from ._events import off_event, on_event
from ._jobs import reload
from ._runner import emit, main

__version__ = "0.1.0"

__all__ = [
    "Busy",
    "Cancelled",
    "Context",
    "DeadlineExceeded",
    "FrameTooLarge",
    "JobNotFound",
    "NoSuchFunction",
    "NonRetryableError",
    "ShuttingDown",
    "StreamClosed",
    "StreamStalled",
    "busy",
    "emit",
    "main",
    "off_event",
    "on_event",
    "on_hard_kill",
    "on_shutdown",
    "ready",
    "reload",
]
