"""Recycling (jobs, RSS, C heap, age), the CPU limit, pings and the kill controls of
offload.Pool and offload.ProcessPoolExecutor, read from the workers' pids and the outcomes
(never from timing)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

import calls
import offload
from helpers import JOBS, alive, until

MiB = 1024 * 1024


def _pid(pool: offload.Pool) -> int:
    pid: int = pool.run("echo")["pid"]
    return pid


def _replaced(pool: offload.Pool, old: int) -> bool:
    """Whether runs now go to another worker and ``old`` is gone."""
    return _pid(pool) != old and not alive(old)


@pytest.fixture
def one() -> Iterator[dict[str, Any]]:
    """Options of a pool of exactly one worker (so every run shows which worker took it)."""
    yield {"min": 1, "max": 1, "retries": 0}


def test_recycle_after_jobs_replaces_the_worker(one: dict[str, Any]) -> None:
    with offload.Pool(JOBS, recycle_after_jobs=2, **one) as pool:
        pids = [_pid(pool) for _ in range(5)]
    assert pids[0] == pids[1] != pids[2]
    assert pids[2] == pids[3] != pids[4]
    assert not alive(pids[0])


def test_recycle_max_rss_replaces_a_worker_that_grew(one: dict[str, Any]) -> None:
    with offload.Pool(JOBS, recycle_max_rss=96 * MiB, **one) as pool:
        big = pool.run("hold", {"bytes": 128 * MiB})
        until(lambda: _replaced(pool, big), "the worker above max_rss to be replaced")
        small = _pid(pool)
        assert pool.run("hold", {"bytes": MiB}) == small  # below the limit: kept
        assert _pid(pool) == small


def test_recycle_max_heap_replaces_a_worker_whose_pong_reports_a_big_heap(
    one: dict[str, Any],
) -> None:
    with offload.Pool(
        JOBS, recycle_max_heap=64 * MiB, ping_interval=0.05, ping_timeout=5.0, **one
    ) as pool:
        big = pool.run("hold", {"bytes": 96 * MiB})
        until(lambda: _replaced(pool, big), "the worker above max_heap to be replaced")


def test_recycle_max_age_replaces_the_worker(one: dict[str, Any]) -> None:
    with offload.Pool(JOBS, recycle_max_age=0.3, **one) as pool:
        first = _pid(pool)
        until(lambda: _replaced(pool, first), "the old worker to be replaced")


def test_cpu_seconds_ends_the_run_and_the_next_one_gets_a_new_worker(
    one: dict[str, Any],
) -> None:
    with offload.Pool(JOBS, cpu_seconds=1, **one) as pool:
        first = _pid(pool)
        with pytest.raises(offload.ResourceLimit) as e:
            pool.run("spin")
        assert e.value.which == "cpu" and e.value.pid == first
        assert _pid(pool) != first
        assert not alive(first)


def test_a_worker_that_stops_answering_pings_is_replaced(one: dict[str, Any]) -> None:
    with offload.Pool(JOBS, ping_interval=0.05, ping_timeout=0.2, **one) as pool:
        first = _pid(pool)
        os.kill(first, signal.SIGSTOP)  # idle and alive, but it answers no ping
        until(lambda: not alive(first), "the frozen worker to be killed")
        assert _pid(pool) != first


def test_ping_options_are_checked() -> None:
    # A limit the pool checks at start is a bad argument, not a failed start.
    with pytest.raises(offload.InvalidArgument, match="ping_interval"):
        offload.Pool(JOBS, ping_interval=0.001)
    with pytest.raises(offload.InvalidArgument, match=r"min \(3\) is above max \(2\)"):
        offload.Pool(JOBS, min=3, max=2)
    with pytest.raises(offload.InvalidArgument, match="ping_timeout"):
        offload.Pool(JOBS, ping_timeout=-1)
    with offload.Pool(JOBS, ping_interval=0, min=1) as pool:  # 0: never ping
        assert pool.run("echo", 1)["params"] == 1


def test_kill_worker_hard_ends_its_run_and_the_pool_replaces_it(
    one: dict[str, Any], tmp_path: Any
) -> None:
    with offload.Pool(JOBS, **one) as pool:
        started = tmp_path / "started"
        fut = pool.submit("stubborn", {"started": str(started)})
        until(started.exists, "the stubborn run to start")
        pid = int(started.read_text())
        pool.kill_worker(pid, "hard", grace=0)
        with pytest.raises(offload.Killed):
            fut.result(timeout=30)
        assert not alive(pid)
        assert _pid(pool) != pid


def test_kill_worker_soft_lets_the_idle_worker_exit(one: dict[str, Any]) -> None:
    with offload.Pool(JOBS, **one) as pool:
        first = _pid(pool)
        pool.kill_worker(first)  # soft, 5 s grace: an idle worker leaves at once
        until(lambda: not alive(first), "the worker to exit")
        assert _pid(pool) != first


def test_kill_worker_refuses_what_is_not_a_worker(one: dict[str, Any]) -> None:
    with offload.Pool(JOBS, **one) as pool:
        with pytest.raises(offload.NoSuchWorker, match="no worker with pid 1"):
            pool.kill_worker(1)
        with pytest.raises(offload.InvalidArgument, match="mode"):
            pool.kill_worker(_pid(pool), "gentle")  # type: ignore[arg-type]
        with pytest.raises(offload.InvalidArgument, match="order"):
            pool.kill_all(order="random")  # type: ignore[arg-type]
        assert pool.run("echo", 2)["params"] == 2  # still usable


@pytest.mark.parametrize("order", ["parallel", "sequence"])
def test_kill_all_ends_every_worker_and_the_pool(order: str) -> None:
    pool = offload.Pool(JOBS, min=2, max=2)
    pids = pool.pids()
    assert len(pids) == 2
    pool.kill_all("hard", order, grace=0)  # type: ignore[arg-type]
    assert not any(alive(p) for p in pids)
    with pytest.raises((offload.ShuttingDown, offload.PoolGone)):
        pool.run("echo")


def test_kill_all_fails_queued_runs_with_shutting_down(tmp_path: Any) -> None:
    pool = offload.Pool(JOBS, min=1, max=1)
    started = tmp_path / "started"
    running = pool.submit("stubborn", {"started": str(started)})
    until(started.exists, "the running job")
    queued = [pool.submit("echo", 1), pool.submit("echo", 2, attempts=3)]
    until(lambda: pool.queued() == 2, "both runs queued")
    pool.kill_all("hard", grace=0)
    with pytest.raises(offload.OffloadError):
        running.result(timeout=30)
    for f in queued:
        with pytest.raises(offload.ShuttingDown, match="killed before the job ran"):
            f.result(timeout=30)


# -- the executor ----------------------------------------------------------------------------


def test_executor_max_tasks_per_child_replaces_the_worker() -> None:
    with offload.ProcessPoolExecutor(1, max_tasks_per_child=2, prefetch=1) as ex:
        pids = [ex.submit(calls.pid).result() for _ in range(5)]
    assert pids[0] == pids[1] != pids[2]
    assert pids[2] == pids[3] != pids[4]


def test_executor_recycle_max_age_replaces_the_worker() -> None:
    with offload.ProcessPoolExecutor(1, recycle_max_age=0.3) as ex:
        first = ex.submit(calls.pid).result()
        until(
            lambda: ex.submit(calls.pid).result() != first and not alive(first),
            "the old worker to be replaced",
        )


def test_executor_recycle_max_rss_replaces_a_worker_that_grew() -> None:
    with offload.ProcessPoolExecutor(1, recycle_max_rss=96 * MiB) as ex:
        big = ex.submit(calls.hold, 128 * MiB).result()
        until(
            lambda: ex.submit(calls.pid).result() != big and not alive(big),
            "the worker above max_rss to be replaced",
        )


def test_executor_cpu_seconds_fails_only_that_call() -> None:
    with offload.ProcessPoolExecutor(1, cpu_seconds=1) as ex:
        first = ex.submit(calls.pid).result()
        with pytest.raises(offload.ResourceLimit):
            ex.submit(calls.spin).result()
        assert ex.submit(calls.pid).result() != first
        assert not alive(first)


def test_executor_kill_worker_hard_fails_the_running_call_only(tmp_path: Any) -> None:
    gate = tmp_path / "gate"
    with offload.ProcessPoolExecutor(1, prefetch=2) as ex:
        (first,) = ex.pids()
        running = ex.submit(calls.wait_for_file, str(gate), 1)
        waiting = ex.submit(calls.pid)  # held by the same worker, behind the running call
        until(lambda: running.running() and waiting.running(), "both calls in the worker")
        ex.kill_worker(first, "hard", grace=0)
        with pytest.raises(offload.Killed):
            running.result()
        assert waiting.result() != first  # run again on the replacement
        assert not alive(first)
        with pytest.raises(offload.NoSuchWorker):
            ex.kill_worker(first)
