"""offload.Client against a real ``offload serve`` (127.0.0.1, port 0, a temporary data folder).
The binary: $OFFLOAD_BIN, else $CARGO_TARGET_DIR/debug/offload, else <repo>/target/debug/offload
(scripts/test builds it before these tests run)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import threading
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import offload
from helpers import HERE, JOBS
from test_models import differences

REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))


def _binary() -> str:
    candidates = [
        os.environ.get("OFFLOAD_BIN"),
        os.environ.get("CARGO_TARGET_DIR") and os.path.join(REPO, os.environ["CARGO_TARGET_DIR"], "debug", "offload"),
        os.path.join(REPO, "target", "debug", "offload"),
    ]
    for c in candidates:
        if c and os.path.exists(c):
            return c
    raise AssertionError("the offload binary: build it (cargo build -p offload) or set OFFLOAD_BIN")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("offload-client")
    env = dict(os.environ, OFFLOAD_LOG="info", OFFLOAD_SDK_DIR=os.path.join(REPO, "sdks"))
    daemon = subprocess.Popen(
        [_binary(), "serve", "--jobs", JOBS, "--data", str(data), "--listen", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert daemon.stderr is not None
        seen = ""
        url = None
        for line in daemon.stderr:
            seen += line
            m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if m:
                url = m.group(1)
                break
        assert url, f"offload serve did not start: {seen}"
        # Keep reading its log so the daemon never blocks on a full pipe.
        threading.Thread(target=daemon.stderr.read, daemon=True).start()
        yield url
    finally:
        daemon.terminate()
        daemon.wait()


def _until_done(client: offload.Client, job_id: str) -> offload.ResultDone:
    for _ in range(10):
        r = client.result(job_id, wait=30)
        if r["done"]:
            return r
    raise AssertionError(f"job {job_id} did not end")


def test_submit_result_status_list_events(server: str) -> None:
    client = offload.Client(server)
    with client.events() as events:  # subscribed before the submit
        sub = client.submit("echo", {"n": 5})
        assert sub["state"] in ("queued", "running", "succeeded") and not sub["duplicate"]
        r = _until_done(client, sub["id"])
        assert r["state"] == "succeeded" and r["result"]["params"] == {"n": 5}
        states = []
        for ev in events:
            if ev["event"] == "job" and ev["data"]["id"] == sub["id"]:
                states.append(ev["data"]["state"])
                if ev["data"]["state"] == "succeeded":
                    break
        assert states[-1] == "succeeded"
    st = client.status(sub["id"])
    assert st["job"] == "echo" and st["attempts"][0]["outcome"] == "succeeded"
    page = client.list(job="echo", limit=10)
    assert sub["id"] in [j["id"] for j in page["jobs"]]


def test_cancel_retry_batch_and_errors(server: str, tmp_path: Path) -> None:
    client = offload.Client(server)
    slow = client.submit("stubborn", {"started": str(tmp_path / "started")})
    assert client.cancel(slow["id"])["id"] == slow["id"]
    assert _until_done(client, slow["id"])["state"] == "cancelled"
    assert client.retry(slow["id"])["state"] in ("queued", "running")
    client.cancel(slow["id"])
    batch = client.submit_batch([{"job": "echo", "params": {"n": 1}}, {"job": "echo", "params": {"n": 2}}])
    assert len(batch) == 2
    assert [_until_done(client, b["id"])["result"]["params"]["n"] for b in batch] == [1, 2]
    with pytest.raises(offload.ClientError) as e:
        client.submit("no-such-job")
    assert e.value.status == 404 and e.value.code == "unknown_job"
    with pytest.raises(offload.ClientError) as e:
        client.status("00000000-0000-0000-0000-000000000000")
    assert e.value.status == 404
    with pytest.raises(offload.ClientError) as e:
        offload.Client("http://127.0.0.1:1").list()
    assert e.value.code == "unreachable"
    with pytest.raises(offload.ClientError):
        offload.Client("ftp://x")


def test_async_client(server: str) -> None:
    async def main() -> Any:
        client = offload.AsyncClient(server)
        sub = await client.submit("echo", {"n": 9})
        while True:
            r = await client.result(sub["id"], wait=30)
            if r["done"]:
                return r.get("result")

    assert asyncio.run(main())["params"] == {"n": 9}


def _fits(answer: Any, model: Any) -> None:
    """``answer``'s keys are the model's: every required one, nothing unknown."""
    assert set(model.__required_keys__) <= set(answer) <= set(model.__annotations__) | set(
        typing.get_type_hints(model)
    ), (model.__name__, sorted(answer))


def test_the_daemon_serves_the_contract_the_models_follow(server: str) -> None:
    client = offload.Client(server)
    assert differences(client.openapi()) == []
    sub = client.submit("echo", {"n": 1})
    _fits(sub, offload.Submitted)
    done = _until_done(client, sub["id"])
    _fits({k: v for k, v in done.items() if k != "done"}, offload.JobResult)
    job = client.status(sub["id"])
    _fits(job, offload.Job)
    for attempt in job["attempts"]:
        _fits(attempt, offload.Attempt)
    page = client.list(limit=5)
    _fits(page, offload.JobPage)
    batch = client.submit_batch([{"job": "echo", "params": 2}])
    _fits(batch[0], offload.Submitted)
