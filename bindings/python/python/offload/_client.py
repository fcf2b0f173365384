"""``Client``: the daemon's HTTP API (``offload serve``, ``docs/http-api.md``) from Python, with
the standard library only (``http.client``)."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import urllib.parse
from collections.abc import Iterator
from typing import Any, Optional, TypedDict, cast

from ._errors import OffloadError
from ._models import Job, JobPage, JobStateView, ResultAnswer, Submitted

_MAX_SSE_LINE = 16 * 1024 * 1024


class Event(TypedDict):
    """One server-sent event: its name (``job``, ``progress``, ``job_event``, ``worker``,
    ``schedule``, ``queue``, ``lagged``) and its JSON data."""

    event: str
    data: Any


class ClientError(OffloadError):
    """The daemon refused a request (``status``, ``code``: its ``ErrorCode``, e.g.
    ``unknown_job``, ``not_found``, ``conflict``), or could not be reached (``code``
    ``unreachable``, ``status`` 0)."""

    def __init__(self, message: str, *, code: str, status: int, job: Optional[str] = None) -> None:
        super().__init__(message, job=job)
        self.code = code
        self.status = status


SUBMIT_FIELDS = (
    "after",
    "after_policy",
    "priority",
    "delay_ms",
    "run_at",
    "timeout_ms",
    "max_attempts",
    "idempotency_key",
    "backoff",
    "keep_result_ms",
    "key_ttl_ms",
    "unique",
)
"""The submit body's fields besides ``job`` and ``params`` (``_models.SubmitField``; checked
against the contract's ``Submit`` by ``tests/test_models.py``)."""


def _submit_body(job: str, params: Any, opts: dict[str, Any]) -> dict[str, Any]:
    unknown = set(opts) - set(SUBMIT_FIELDS)
    if unknown:
        raise TypeError(f"unknown submit option(s) {sorted(unknown)}: use {', '.join(SUBMIT_FIELDS)}")
    body: dict[str, Any] = {"job": job}
    if params is not None:
        body["params"] = params
    body.update({k: v for k, v in opts.items() if v is not None})
    return body


class Client:
    """A client of ``offload serve`` at ``server`` (``http://host:port``), with an optional
    bearer ``token``. Each call is one HTTP request; ``timeout`` (seconds) bounds a request
    (a long poll's ``wait`` is added to it)."""

    def __init__(
        self,
        server: str = "http://127.0.0.1:7070",
        token: Optional[str] = None,
        *,
        timeout: float = 30.0,
    ) -> None:
        url = urllib.parse.urlsplit(server)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ClientError(
                f"server must be an http(s)://host:port URL, not {server!r}",
                code="invalid_server",
                status=0,
            )
        self.server = server.rstrip("/")
        self._url = url
        self._token = token
        self._timeout = timeout

    def _connect(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        host, port = self._url.hostname or "", self._url.port
        if self._url.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _headers(self, body: bool) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if body:
            h["Content-Type"] = "application/json"
        if self._token:
            h["Authorization"] = f"Bearer {self._token}"
        return h

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        accept: tuple[int, ...] = (200, 201),
        extra_timeout: float = 0.0,
    ) -> tuple[int, Any]:
        conn = self._connect(self._timeout + extra_timeout)
        data = None if body is None else json.dumps(body).encode()
        try:
            conn.request(method, path, body=data, headers=self._headers(data is not None))
            res = conn.getresponse()
            raw = res.read()
        except (OSError, http.client.HTTPException) as e:
            raise ClientError(
                f"{method} {path}: cannot reach {self.server}: {e}", code="unreachable", status=0
            ) from e
        finally:
            conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        if res.status not in accept:
            err = parsed.get("error") if isinstance(parsed, dict) else None
            code = err.get("code") if isinstance(err, dict) else f"http_{res.status}"
            message = err.get("message") if isinstance(err, dict) else raw[:200].decode(errors="replace")
            raise ClientError(f"{method} {path}: {res.status} {code}: {message}", code=str(code), status=res.status)
        return res.status, parsed

    @staticmethod
    def _id(job_id: str) -> str:
        return urllib.parse.quote(job_id, safe="")

    def submit(self, job: str, params: Any = None, **opts: Any) -> Submitted:
        """Submits ``job`` with ``params``; ``opts`` are the submit body's other fields
        (``priority``, ``delay_ms``, ``run_at``, ``timeout_ms``, ``max_attempts``,
        ``idempotency_key``, ``backoff``, ``keep_result_ms``, ``key_ttl_ms``, ``unique``,
        ``after``: ids of jobs it runs after, ``after_policy``)."""
        _, out = self._request("POST", "/v1/jobs", _submit_body(job, params, opts))
        answer: Submitted = out
        return answer

    def submit_batch(self, items: list[dict[str, Any]]) -> list[Submitted]:
        """Submits several jobs in one transaction (each item a submit body: ``{"job",
        "params", ...}``); any invalid one rejects the whole batch."""
        bodies = [_submit_body(i["job"], i.get("params"), {k: v for k, v in i.items() if k not in ("job", "params")}) for i in items]
        _, out = self._request("POST", "/v1/jobs/batch", {"jobs": bodies})
        jobs: list[Submitted] = out["jobs"]
        return jobs

    def status(self, job_id: str) -> Job:
        """The job: state, params, progress, result, error, attempts…"""
        _, out = self._request("GET", f"/v1/jobs/{self._id(job_id)}")
        job: Job = out
        return job

    def result(self, job_id: str, wait: float = 0) -> ResultAnswer:
        """The job's end (``{"id", "state", "result", "error", "done": True}``), waiting up to
        ``wait`` seconds (at most 60) for it; ``{"id", "state", "progress", "done": False}``
        while it is not over."""
        wait_s = int(wait)
        status, out = self._request(
            "GET",
            f"/v1/jobs/{self._id(job_id)}/result?wait={wait_s}",
            accept=(200, 202),
            extra_timeout=float(wait_s),
        )
        answer = dict(out)
        answer["done"] = status == 200
        return cast(ResultAnswer, answer)

    def cancel(self, job_id: str) -> JobStateView:
        """Cancels the job (a running one is killed): ``{"id", "state"}``."""
        _, out = self._request("POST", f"/v1/jobs/{self._id(job_id)}/cancel")
        answer: JobStateView = out
        return answer

    def retry(self, job_id: str) -> JobStateView:
        """Queues a dead or cancelled job again (``conflict`` for another state)."""
        _, out = self._request("POST", f"/v1/jobs/{self._id(job_id)}/retry")
        answer: JobStateView = out
        return answer

    def list(
        self,
        *,
        state: Optional[str] = None,
        job: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        include: Optional[str] = None,
    ) -> JobPage:
        """A page of jobs, newest first: ``{"jobs": [...], "next_cursor": str | None}``."""
        q = {"state": state, "job": job, "limit": limit, "cursor": cursor, "include": include}
        query = urllib.parse.urlencode({k: v for k, v in q.items() if v is not None})
        _, out = self._request("GET", "/v1/jobs" + (f"?{query}" if query else ""))
        page: JobPage = out
        return page

    def openapi(self) -> dict[str, Any]:
        """The daemon's API contract (``GET /v1/openapi.json``): the document the typed models
        (``offload.Job``, ``offload.Submitted``, …) follow."""
        _, out = self._request("GET", "/v1/openapi.json")
        doc: dict[str, Any] = out
        return doc

    def events(self) -> EventStream:
        """The daemon's events (``GET /v1/events``), an iterator of :class:`Event`; the
        connection is open when this returns (events after it are seen). ``close()`` (or a
        ``with`` block) ends it."""
        conn = self._connect(None)
        try:
            headers = self._headers(False)
            headers["Accept"] = "text/event-stream"
            conn.request("GET", "/v1/events", headers=headers)
            res = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise ClientError(f"GET /v1/events: cannot reach {self.server}: {e}", code="unreachable", status=0) from e
        if res.status != 200:
            res.read()
            conn.close()
            raise ClientError(f"GET /v1/events: {res.status}", code=f"http_{res.status}", status=res.status)
        return EventStream(conn, res)


class EventStream:
    """Server-sent events as an iterator of :class:`Event` (comments and keep-alives skipped)."""

    def __init__(self, conn: http.client.HTTPConnection, res: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._res = res
        self._closed = False

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        name = "message"
        data: list[str] = []
        while True:
            try:
                line = self._res.readline(_MAX_SSE_LINE + 1)
            except (OSError, ValueError, http.client.HTTPException):
                line = b""
            if not line:
                self.close()
                raise StopIteration
            if len(line) > _MAX_SSE_LINE:
                self.close()
                raise ClientError("an event line exceeds 16 MiB", code="event_too_large", status=0)
            text = line.decode("utf-8").rstrip("\r\n")
            if text == "":
                if data:
                    raw = "\n".join(data)
                    try:
                        value: Any = json.loads(raw)
                    except ValueError:
                        value = raw
                    return {"event": name, "data": value}
                name, data = "message", []
            elif text.startswith(":"):
                continue
            elif text.startswith("event:"):
                name = text[6:].strip()
            elif text.startswith("data:"):
                data.append(text[5:].lstrip(" "))

    def close(self) -> None:
        """Closes the connection (idempotent)."""
        if not self._closed:
            self._closed = True
            try:
                sock = self._conn.sock
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._conn.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """:class:`Client` for asyncio: the same methods as coroutines (each request runs in the
    default executor's thread, so the loop never blocks)."""

    def __init__(self, server: str = "http://127.0.0.1:7070", token: Optional[str] = None, *, timeout: float = 30.0) -> None:
        self.sync = Client(server, token, timeout=timeout)

    async def submit(self, job: str, params: Any = None, **opts: Any) -> Submitted:
        return await asyncio.to_thread(self.sync.submit, job, params, **opts)

    async def submit_batch(self, items: list[dict[str, Any]]) -> list[Submitted]:
        return await asyncio.to_thread(self.sync.submit_batch, items)

    async def status(self, job_id: str) -> Job:
        return await asyncio.to_thread(self.sync.status, job_id)

    async def result(self, job_id: str, wait: float = 0) -> ResultAnswer:
        return await asyncio.to_thread(self.sync.result, job_id, wait)

    async def cancel(self, job_id: str) -> JobStateView:
        return await asyncio.to_thread(self.sync.cancel, job_id)

    async def retry(self, job_id: str) -> JobStateView:
        return await asyncio.to_thread(self.sync.retry, job_id)

    async def list(self, **filters: Any) -> JobPage:
        return await asyncio.to_thread(lambda: self.sync.list(**filters))
