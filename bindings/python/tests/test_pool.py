"""offload.Pool, offload.run_job and ChildJob against real worker processes."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any
from pathlib import Path

import pytest

import offload
from helpers import JOBS, alive, until


@pytest.fixture
def pool() -> Iterator[offload.Pool]:
    with offload.Pool(JOBS, min=1, max=2, retries=0, cancel_grace=0.2) as p:
        yield p


def test_run_returns_the_job_result(pool: offload.Pool) -> None:
    out = pool.run("echo", {"n": 1})
    assert out["params"] == {"n": 1}
    assert out["pid"] in pool.pids()


def test_run_async_returns_the_job_result(pool: offload.Pool) -> None:
    async def main() -> list[object]:
        return list(await asyncio.gather(*(pool.run_async("echo", i) for i in range(8))))

    results = asyncio.run(main())
    assert [r["params"] for r in results] == list(range(8))  # type: ignore[index]


def test_submit_returns_a_future(pool: offload.Pool) -> None:
    assert pool.submit("echo", "x").result()["params"] == "x"


def test_a_job_that_raises_gives_job_failed_with_its_stack(pool: offload.Pool) -> None:
    with pytest.raises(offload.JobFailed) as e:
        pool.run("fail", {"card": "4242"})
    assert e.value.error_name == "PaymentDeclined"
    assert "card 4242 declined" in e.value.message
    assert e.value.job_stack is not None and "fail.py" in e.value.job_stack
    assert pool.run("echo", 2)["params"] == 2


def test_refusals_are_typed_and_name_the_job(pool: offload.Pool) -> None:
    with pytest.raises(offload.JobNotFound):
        pool.run("missing")
    with pytest.raises(offload.InvalidJob, match="not allowed"):
        pool.run("../tests/jobs/echo")
    with pytest.raises(offload.InvalidArgument, match="echo"):
        pool.run("echo", {"bad": {1, 2}})
    assert pool.run("echo", 3)["params"] == 3


def test_an_affinity_key_is_bounded_in_bytes(pool: offload.Pool) -> None:
    # 1 KiB of UTF-8 at most (the pool's MAX_KEY_BYTES): 1024 two-byte characters are 2048.
    for key in ("k" * 1025, "é" * 1024):
        with pytest.raises(offload.InvalidArgument, match="MAX_KEY_BYTES"):
            pool.run("echo", 1, key=key)
    a = pool.run("echo", 2, key="k" * 1024)
    b = pool.run("echo", 3, key="k" * 1024)
    assert a["pid"] == b["pid"]


def test_a_size_above_max_workers_is_refused_naming_the_limit(pool: offload.Pool) -> None:
    # resize(10**9) used to grow the pool's slot table to a billion entries (12 GB, a hang).
    assert offload.MAX_WORKERS == 1024
    before = sorted(pool.pids())
    for n in (1025, 10**9, 2**64 + 2):
        with pytest.raises(offload.InvalidArgument, match="1024"):
            pool.resize(n)
    with pytest.raises(offload.InvalidArgument):
        pool.resize(-1)
    assert sorted(pool.pids()) == before
    assert pool.run("echo", 4)["params"] == 4
    for kw in ({"max": 1025}, {"min": 10**9}):
        with pytest.raises(offload.InvalidArgument, match="1024"):
            offload.Pool(JOBS, **kw)  # type: ignore[arg-type]
    with pytest.raises(offload.InvalidArgument, match="1024"):
        offload.ProcessPoolExecutor(max_workers=5000)


def test_timeout_kills_the_worker(pool: offload.Pool, tmp_path: Path) -> None:
    with pytest.raises(offload.TimedOut) as e:
        pool.run("stubborn", {"started": str(tmp_path / "started")}, timeout=0.2)
    pid = e.value.pid
    assert pid is not None
    until(lambda: not alive(pid), f"worker {pid} to be gone")
    assert pool.run("echo", 4)["params"] == 4


def test_cancelling_the_awaiting_task_kills_the_job(tmp_path: Path) -> None:
    started = tmp_path / "started"

    async def main(pool: offload.Pool) -> int:
        task = asyncio.create_task(pool.run_async("stubborn", {"started": str(started)}))
        while not started.exists():  # the job is running: it wrote its pid
            await asyncio.sleep(0.01)
        pid = int(started.read_text())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return pid

    with offload.Pool(JOBS, min=1, max=1, retries=0, cancel_grace=0.2) as pool:
        pid = asyncio.run(main(pool))
        until(lambda: not alive(pid), f"worker {pid} to be killed")
        assert pool.run("echo", 5)["params"] == 5


def test_a_worker_killed_from_outside_fails_only_its_run(pool: offload.Pool, tmp_path: Path) -> None:
    started = tmp_path / "started"
    fut = pool.submit("stubborn", {"started": str(started)})
    until(started.exists, "the job to start")
    os.kill(int(started.read_text()), signal.SIGKILL)
    with pytest.raises(offload.Crashed) as e:
        fut.result()
    assert e.value.signal == signal.SIGKILL
    assert pool.run("echo", 6)["params"] == 6


def test_a_worker_that_cannot_start_fails_the_pool_at_once() -> None:
    with pytest.raises(offload.StartFailed):
        offload.Pool(JOBS, python="/nonexistent/python3", start_timeout=5)


def test_run_job_runs_a_fresh_process_each_time() -> None:
    a = offload.run_job(os.path.join(JOBS, "echo.py"), {"x": 1})
    b = offload.run_job("echo", {"x": 2}, jobs=JOBS)
    assert a["params"] == {"x": 1} and b["params"] == {"x": 2}
    assert a["pid"] != b["pid"]
    assert not alive(a["pid"])


def test_run_job_errors_are_typed(tmp_path: Path) -> None:
    with pytest.raises(offload.JobFailed):
        offload.run_job("fail", {"card": "1"}, jobs=JOBS)
    with pytest.raises(offload.InvalidJob):
        offload.run_job("../echo", jobs=JOBS)
    with pytest.raises(offload.TimedOut):
        offload.run_job("stubborn", {"started": str(tmp_path / "s")}, jobs=JOBS, timeout=0.2)
    # "A=B" used to set A to "B=x".
    for env in ({"A=B": "x"}, {"": "x"}, {"A": "x\0y"}):
        with pytest.raises(offload.InvalidArgument, match="environment variable"):
            offload.run_job("echo", jobs=JOBS, env=env)
        with pytest.raises(offload.InvalidArgument, match="environment variable"):
            offload.Pool(JOBS, min=1, max=1, env=env)


def test_run_job_async_cancel_kills_the_process(tmp_path: Path) -> None:
    started = tmp_path / "started"

    async def main() -> int:
        task = asyncio.create_task(
            offload.run_job_async("stubborn", {"started": str(started)}, jobs=JOBS)
        )
        while not started.exists():
            await asyncio.sleep(0.01)
        pid = int(started.read_text())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return pid

    pid = asyncio.run(main())
    until(lambda: not alive(pid), f"process {pid} to be killed")


def test_ctrl_c_while_waiting_cancels_the_run(tmp_path: Path) -> None:
    started = tmp_path / "started"

    def interrupt() -> None:  # runs while the main thread waits in run(): the GIL is free
        until(started.exists, "the job to start")
        os.kill(os.getpid(), signal.SIGINT)

    # A shell that starts the tests in the background leaves SIGINT ignored, and Python then
    # installs no handler: give it Python's own for this test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    with offload.Pool(JOBS, min=1, max=1, retries=0, cancel_grace=0.2) as pool:
        t = threading.Thread(target=interrupt)
        t.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                pool.run("stubborn", {"started": str(started)})
        finally:
            signal.signal(signal.SIGINT, previous)
        t.join()
        pid = int(started.read_text())
        until(lambda: not alive(pid), f"worker {pid} to be killed")
        assert pool.run("echo", 7)["params"] == 7


def test_progress_reaches_the_callback_in_order_before_the_end(pool: offload.Pool) -> None:
    seen: list[object] = []
    assert pool.run("progress", {"n": 5}, on_progress=seen.append) == "ok"
    assert seen == [{"done": i, "total": 5} for i in range(1, 6)]
    seen.clear()
    assert asyncio.run(pool.run_async("progress", {"n": 3}, on_progress=seen.append)) == "ok"
    assert seen == [{"done": i, "total": 3} for i in range(1, 4)]


def test_every_event_of_a_burst_reaches_a_slow_callback_in_order(pool: offload.Pool) -> None:
    # A job emitting 20,000 events in a burst to a callback slower than the job: 980-1,652
    # arrived before backpressure, the rest were dropped. Now the worker is read only as fast
    # as the callbacks run.
    n = 20000
    seen: list[object] = []

    def event(name: str, data: Any) -> None:
        seen.append(data["i"] if name == "step" else name)
        if len(seen) % 100 == 0:
            time.sleep(0.001)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert pool.run("events", {"n": n}, on_event=event) == "ok"
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert seen == [*range(n), "last"]


def test_job_events_reach_on_event_in_order_before_the_end(pool: offload.Pool) -> None:
    seen: list[tuple[str, object]] = []
    mixed: list[object] = []

    def progress(data: object) -> None:
        mixed.append(("progress", data))

    def event(name: str, data: object) -> None:
        seen.append((name, data))
        mixed.append((name, data))

    assert pool.run("events", {"n": 4}, on_event=event, on_progress=progress) == "ok"
    want = [("step", {"i": i}) for i in range(4)] + [("last", None)]
    assert seen == want  # every receiver ("task", "job", "all"), in order
    assert mixed == want[:4] + [("progress", "half"), ("last", None)]
    seen.clear()
    assert asyncio.run(pool.run_async("events", {"n": 2}, on_event=event)) == "ok"
    assert seen == [("step", {"i": 0}), ("step", {"i": 1}), ("last", None)]
    seen.clear()
    assert pool.submit("events", {"n": 1}, on_event=event).result() == "ok"
    assert seen == [("step", {"i": 0}), ("last", None)]


def test_a_run_pinned_to_a_worker_runs_there_or_raises_no_such_worker() -> None:
    with offload.Pool(JOBS, min=2, max=2, retries=0, cancel_grace=0.2) as p:
        until(lambda: len(p.pids()) == 2, "two workers")
        pids = p.pids()
        for pid in pids:
            assert p.run("echo", 1, worker=pid)["pid"] == pid
            assert p.submit("echo", 2, worker=pid).result()["pid"] == pid
            assert asyncio.run(p.run_async("echo", 3, worker=pid))["pid"] == pid
        # Not one of the pool's workers: refused when dispatched, typed, naming the job.
        with pytest.raises(offload.NoSuchWorker, match="echo"):
            p.run("echo", 1, worker=os.getpid())
        for bad in (0, -1, True, 1.5, "12", 2**32):
            with pytest.raises(offload.InvalidArgument, match="worker"):
                p.run("echo", 1, worker=bad)  # type: ignore[arg-type]
        # Busy: a pinned run waits for its worker; the worker gone first: NoSuchWorker.
        a = pids[0]
        spinning = p.submit("spin", None, worker=a)
        waiting = p.submit("echo", 4, worker=a)
        until(lambda: any(w["pid"] == a and w["in_flight"] == 1 for w in p.health()), "spin runs")
        time.sleep(0.1)
        assert not waiting.done()
        p.kill_worker(a, "hard", grace=0.2)
        with pytest.raises(offload.Killed):
            spinning.result(timeout=30)
        with pytest.raises(offload.NoSuchWorker, match="worker"):
            waiting.result(timeout=30)
        until(lambda: len(p.pids()) == 2 and a not in p.pids(), "the worker replaced")
