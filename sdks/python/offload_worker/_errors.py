"""Exceptions whose class names are the error names sent on the wire (docs/protocol.md §4)."""


class Cancelled(BaseException):
    """The job was cancelled; raised inside a job by ctx.check_cancelled(), ctx.sleep() and
    ctx.asleep(). A job that lets it propagate answers an error named ``Cancelled``.

    It derives from BaseException (like asyncio.CancelledError) so that a broad
    ``except Exception:`` in job code does not swallow the cancellation by accident.
    """


class DeadlineExceeded(Cancelled):
    """The job's deadline passed (its cancellation fired for that reason)."""


class JobNotFound(Exception):
    """No job file for the job name or path, or the file has no handle()."""


class NoSuchFunction(Exception):
    """A call names a function the job module does not define at top level."""


class FrameTooLarge(ValueError):
    """A frame would be longer than OFFLOAD_MAX_FRAME."""


class Busy(Exception):
    """A run or call arrived while OFFLOAD_CONCURRENCY jobs were already running."""


class ShuttingDown(Exception):
    """A run or call arrived after shutdown (or SIGTERM)."""


class StreamStalled(OSError):
    """A job's stream write waited the run's stall limit without its reader taking anything
    (docs/protocol.md §10): the reader stopped reading."""


class StreamClosed(OSError):
    """The other end of a job's stream was closed before the job was done with it."""


class NonRetryableError(Exception):
    """A failure no retry can fix (bad input, a missing record): the job goes straight to dead,
    whatever attempts it has left (``retry: false`` on the wire). Any exception with a
    ``retry = False`` attribute does the same; ``ctx.fail(exc, retry=False)`` sets it and raises.
    """

    retry = False
