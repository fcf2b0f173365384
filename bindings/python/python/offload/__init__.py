"""offload for Python: supervised worker processes from a native extension.

- :class:`Pool` runs the job files of a folder in resident, supervised workers;
- :func:`run_job` / :class:`ChildJob` run one job in one fresh process;
- :class:`Client` / :class:`AsyncClient` talk to the daemon (``offload serve``);
- :class:`ProcessPoolExecutor` is a ``concurrent.futures.Executor`` whose worker deaths fail
  only their own futures.

Every failure is a typed :class:`OffloadError`. See ``bindings/python/README.md``.
"""

from __future__ import annotations

from ._client import AsyncClient, Client, ClientError, Event, EventStream
from ._models import (
    Attempt,
    BatchSubmitted,
    ErrorCode,
    Held,
    Job,
    JobError,
    JobPage,
    JobPending,
    JobResult,
    JobState,
    JobStateView,
    ResultAnswer,
    ResultDone,
    ResultPending,
    Submitted,
)
from ._child import ChildJob, run_job, run_job_async
from ._errors import (
    Cancelled,
    Crashed,
    InvalidArgument,
    InvalidJob,
    JobFailed,
    JobNotFound,
    Killed,
    NoSuchWorker,
    OffloadError,
    ParamsTooLarge,
    PoolGone,
    ProtocolError,
    QueueFull,
    ResourceLimit,
    ShuttingDown,
    SpawnFailed,
    StartFailed,
    TimedOut,
    UnpicklableError,
    WorkerCrashed,
)
from ._executor import ProcessPoolExecutor, RemoteTraceback, progress
from ._native import MAX_WORKERS
from ._pool import Pool

__all__ = [
    "MAX_WORKERS",
    "Pool",
    "Client",
    "AsyncClient",
    "ClientError",
    "Event",
    "EventStream",
    "Submitted",
    "BatchSubmitted",
    "Job",
    "JobPage",
    "JobResult",
    "JobPending",
    "JobStateView",
    "JobError",
    "JobState",
    "ErrorCode",
    "Attempt",
    "Held",
    "ResultAnswer",
    "ResultDone",
    "ResultPending",
    "ProcessPoolExecutor",
    "RemoteTraceback",
    "progress",
    "ChildJob",
    "run_job",
    "run_job_async",
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
    "NoSuchWorker",
    "StartFailed",
    "SpawnFailed",
    "ParamsTooLarge",
    "UnpicklableError",
]
