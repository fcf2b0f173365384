"""The daemon's answers as typed dicts, field for field the API contract's schemas
(``GET /v1/openapi.json``; its snapshot is
``crates/server/src/http/snapshots/…the_document_with_a_token.snap``).

``tests/test_models.py`` reads the contract and fails when a model and its schema disagree: a
field missing or extra, required or not, its type, and the ``Literal`` enums (``JobState``,
``ErrorCode``, …). Each model names its schema in ``SCHEMAS``.

Optional fields (absent from the schema's ``required``) are in a ``total=False`` subclass, so the
models work on Python 3.9 (no ``NotRequired``).
"""

from __future__ import annotations

from typing import Any, Literal, Optional, TypedDict, Union

JobState = Literal[
    "scheduled", "waiting", "queued", "running", "succeeded", "failed", "dead", "cancelled"
]
"""A job's state (schema ``JobState``)."""

ErrorCode = Literal[
    "invalid_json",
    "invalid_request",
    "invalid_cron",
    "unauthorized",
    "forbidden",
    "unknown_job",
    "not_found",
    "method_not_allowed",
    "request_timeout",
    "conflict",
    "payload_too_large",
    "unsupported_media_type",
    "misdirected_request",
    "queue_full",
    "unavailable",
    "too_many_connections",
    "too_many_subscribers",
    "too_many_long_polls",
    "internal",
]
"""The code of a refusal (schema ``ErrorCode``)."""

HeldReason = Literal["rate_limit", "concurrency_limit"]
QueueKind = Literal["pool", "job"]
AfterPolicy = Literal["succeeded", "always"]
"""When a job with ``after`` runs (schema ``AfterPolicy``)."""


class _SubmittedBase(TypedDict):
    id: str
    state: JobState


class Submitted(_SubmittedBase, total=False):
    """The answer to a submit (schema ``Submitted``): the job's id, its state, and whether an
    idempotency key (or ``unique``) found an earlier job."""

    duplicate: bool


class BatchSubmitted(TypedDict):
    """The answer to a batch (schema ``BatchSubmitted``), in the request's order."""

    jobs: list[Submitted]


class _JobErrorBase(TypedDict):
    name: str
    message: str


class JobError(_JobErrorBase, total=False):
    """What a job raised (schema ``JobError``)."""

    stack: Optional[str]
    retry: bool


class _AttemptBase(TypedDict):
    attempt: int
    started_at: int


class Attempt(_AttemptBase, total=False):
    """One attempt of a job (schema ``Attempt``); times in ms since the epoch."""

    ended_at: Optional[int]
    error: Optional[JobError]
    node: Optional[str]
    outcome: Optional[str]
    pid: Optional[int]


class Held(TypedDict):
    """The limit that holds a queued job back (schema ``Held``)."""

    reason: HeldReason
    kind: QueueKind
    name: str


BackoffKind = Literal["fixed", "linear", "exponential", "list"]


class _BackoffBase(TypedDict):
    kind: BackoffKind


class Backoff(_BackoffBase, total=False):
    """How long a failed job waits before its next attempt (schema ``Backoff``, one shape per
    ``kind``, merged here): ``delay_ms`` for ``fixed``, ``linear`` and ``exponential``,
    ``delays_ms`` for ``list``."""

    delay_ms: int
    delays_ms: list[int]
    jitter: bool
    max_delay_ms: Optional[int]


class _JobBase(TypedDict):
    id: str
    job: str
    pool: str
    state: JobState
    priority: int
    run_at: int
    created_at: int
    updated_at: int
    attempt: int
    max_attempts: int
    backoff_ms: int
    backoff: Backoff
    cancel_requested: bool
    attempts: list[Attempt]


class Job(_JobBase, total=False):
    """A job as ``GET /v1/jobs/{id}`` shows it (schema ``Job``)."""

    after: list[str]
    after_policy: Optional[AfterPolicy]
    error: Optional[JobError]
    held: Optional[Held]
    idempotency_key: Optional[str]
    keep_result_ms: Optional[int]
    lease_until: Optional[int]
    node: Optional[str]
    params: Any
    progress: Any
    result: Any
    schedule: Optional[str]
    timeout_ms: Optional[int]
    waiting_on: int


class _JobPageBase(TypedDict):
    jobs: list[Job]


class JobPage(_JobPageBase, total=False):
    """A page of ``GET /v1/jobs`` (schema ``JobPage``), newest first."""

    next_cursor: Optional[str]


class _JobResultBase(TypedDict):
    id: str
    state: JobState


class JobResult(_JobResultBase, total=False):
    """``GET /v1/jobs/{id}/result`` of a job that is over (schema ``JobResult``)."""

    error: Optional[JobError]
    result: Any


class _JobPendingBase(TypedDict):
    id: str
    state: JobState


class JobPending(_JobPendingBase, total=False):
    """``GET /v1/jobs/{id}/result`` of a job not over yet (schema ``JobPending``, ``202``)."""

    progress: Any


class JobStateView(TypedDict):
    """The answer to a cancel or a retry (schema ``JobStateView``)."""

    id: str
    state: JobState


class ResultDone(JobResult):
    """:meth:`Client.result` of a job that is over: ``JobResult`` and ``done: True``."""

    done: Literal[True]


class ResultPending(JobPending):
    """:meth:`Client.result` of a job not over yet: ``JobPending`` and ``done: False``."""

    done: Literal[False]


ResultAnswer = Union[ResultDone, ResultPending]
"""What :meth:`Client.result` returns; ``answer["done"]`` tells which."""

SubmitField = Literal[
    "after",
    "after_policy",
    "backoff",
    "delay_ms",
    "idempotency_key",
    "keep_result_ms",
    "key_ttl_ms",
    "max_attempts",
    "priority",
    "run_at",
    "timeout_ms",
    "unique",
]
"""The submit body's fields besides ``job`` and ``params`` (schema ``Submit``)."""

SCHEMAS: dict[str, Any] = {
    "Submitted": Submitted,
    "BatchSubmitted": BatchSubmitted,
    "JobError": JobError,
    "Attempt": Attempt,
    "Held": Held,
    "Backoff": Backoff,
    "Job": Job,
    "JobPage": JobPage,
    "JobResult": JobResult,
    "JobPending": JobPending,
    "JobStateView": JobStateView,
}
"""Each model by the name of its schema in the contract."""

ENUMS: dict[str, Any] = {
    "JobState": JobState,
    "ErrorCode": ErrorCode,
    "HeldReason": HeldReason,
    "QueueKind": QueueKind,
    "AfterPolicy": AfterPolicy,
}
"""Each ``Literal`` by the name of its schema in the contract."""
