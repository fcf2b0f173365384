"""offload.ProcessPoolExecutor: the standard library's behaviour (the same test bodies run
against concurrent.futures.ProcessPoolExecutor), then what it adds: a worker's death, a
timeout or a memory limit fails only its own future."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

import calls
import offload
from helpers import alive, until

Executor = concurrent.futures.Executor


def _stdlib(n: int) -> Executor:
    return concurrent.futures.ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))


def _offload(n: int) -> Executor:
    return offload.ProcessPoolExecutor(n)


KINDS = {"stdlib": _stdlib, "offload": _offload}


@pytest.fixture(params=sorted(KINDS))
def make(request: pytest.FixtureRequest) -> Callable[[int], Executor]:
    factory: Callable[[int], Executor] = KINDS[request.param]
    return factory


@pytest.fixture
def executor(make: Callable[[int], Executor]) -> Iterator[Executor]:
    ex = make(2)
    yield ex
    ex.shutdown(wait=True, cancel_futures=True)


# -- the standard library's behaviour, against both executors ---------------------------------


def test_submit_returns_the_value(executor: Executor) -> None:
    assert executor.submit(calls.add, 1, b=2).result() == 3
    assert executor.submit(calls.add, -1, b=-2).result() == -3


def test_map_keeps_order_and_zips_iterables(executor: Executor) -> None:
    assert list(executor.map(calls.square, range(20))) == [i * i for i in range(20)]
    assert list(executor.map(calls.add, [1, 2, 3], [10, 20])) == [11, 22]


def test_map_raises_the_first_error_when_reached(executor: Executor) -> None:
    results = executor.map(calls.boom, ["x"])
    with pytest.raises(calls.Boom, match="x"):
        list(results)


def test_exceptions_come_back_with_the_remote_traceback(executor: Executor) -> None:
    fut = executor.submit(calls.boom, "bad")
    exc = fut.exception()
    assert isinstance(exc, calls.Boom) and str(exc) == "bad"
    assert exc.__cause__ is not None and "boom" in str(exc.__cause__)
    with pytest.raises(ValueError, match="outer") as e:
        executor.submit(calls.chained).result()
    assert "KeyError" in str(e.value.__cause__)  # the chained cause, in the worker's traceback
    assert executor.submit(calls.add, 1).result() == 1


def test_done_callbacks_and_as_completed(executor: Executor) -> None:
    seen: list[int] = []
    futs = [executor.submit(calls.square, i) for i in range(6)]
    futs[0].add_done_callback(lambda f: seen.append(f.result()))
    done = {f.result() for f in concurrent.futures.as_completed(futs)}
    assert done == {0, 1, 4, 9, 16, 25}
    until(lambda: seen == [0], "the done callback")


def test_result_timeout_then_many_waiters_see_the_same_end(
    executor: Executor, tmp_path: Path
) -> None:
    # offload: the caller in result() settles the future itself (handoff.rs); a timed-out
    # wait, a second waiting thread and a done callback must all see the one end.
    gate = tmp_path / "gate"
    fut = executor.submit(calls.wait_for_file, str(gate), 7)
    with pytest.raises(concurrent.futures.TimeoutError):
        fut.result(timeout=0.05)
    assert not fut.done()
    got: list[object] = []
    seen: list[int] = []
    fut.add_done_callback(lambda f: seen.append(f.result()))
    waiters = [threading.Thread(target=lambda: got.append(fut.result())) for _ in range(2)]
    waiters.append(threading.Thread(target=lambda: got.append(fut.exception())))
    for w in waiters:
        w.start()
    gate.touch()
    assert fut.result() == 7
    for w in waiters:
        w.join()
    assert sorted(got, key=repr) == [7, 7, None]
    until(lambda: seen == [7], "the done callback")


def test_submit_after_shutdown_raises(executor: Executor) -> None:
    executor.shutdown(wait=True)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(calls.add, 1)


def test_shutdown_waits_for_pending_futures(executor: Executor) -> None:
    futs = [executor.submit(calls.sleep_then, 0.05, i) for i in range(6)]
    executor.shutdown(wait=True)
    assert all(f.done() for f in futs)
    assert [f.result() for f in futs] == list(range(6))


def test_shutdown_cancel_futures_cancels_only_the_calls_not_started(
    make: Callable[[int], Executor], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    ex = make(1)
    first = ex.submit(calls.wait_for_file, str(gate), 7)
    until(first.running, "the first call to run")
    rest = [ex.submit(calls.add, i) for i in range(6)]
    ex.shutdown(wait=False, cancel_futures=True)
    gate.touch()
    assert first.result() == 7
    assert all(f.cancelled() for f in rest[-3:])  # the stdlib may already hold two in its queue
    ex.shutdown(wait=True)


def test_cancelling_a_pending_future_removes_its_call(
    make: Callable[[int], Executor], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    ex = make(1)
    first = ex.submit(calls.wait_for_file, str(gate), 1)
    until(first.running, "the first call to run")
    rest = [ex.submit(calls.add, i) for i in range(4)]
    assert rest[-1].cancel() and rest[-1].cancelled()
    assert not first.cancel()  # a running call cannot be cancelled through its future
    gate.touch()
    assert first.result() == 1
    assert [f.result() for f in rest[:2]] == [0, 1]
    ex.shutdown(wait=True)


def test_run_in_executor(executor: Executor) -> None:
    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        return list(
            await asyncio.gather(*(loop.run_in_executor(executor, calls.square, i) for i in range(5)))
        )

    assert asyncio.run(main()) == [0, 1, 4, 9, 16]


# -- what offload adds ---------------------------------------------------------------------------


@pytest.fixture
def oex() -> Iterator[offload.ProcessPoolExecutor]:
    ex = offload.ProcessPoolExecutor(2)
    yield ex
    ex.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize(
    ("call", "sig", "code"),
    [
        (calls.kill_self, signal.SIGKILL, None),
        (calls.segfault, signal.SIGSEGV, None),
        (calls.exit3, None, 3),
    ],
    ids=["sigkill", "segfault", "exit3"],
)
def test_a_dying_worker_fails_only_its_own_future(
    oex: offload.ProcessPoolExecutor,
    tmp_path: Path,
    call: Callable[[], None],
    sig: int | None,
    code: int | None,
) -> None:
    gate = tmp_path / "gate"
    sibling = oex.submit(calls.wait_for_file, str(gate), 42)
    until(sibling.running, "the sibling call to run")
    with pytest.raises(offload.WorkerCrashed) as e:
        oex.submit(call).result()
    assert e.value.signal == sig and e.value.exit_code == code
    assert e.value.pid is not None and not alive(e.value.pid)
    assert oex.submit(calls.add, 1, 2).result() == 3  # the executor keeps working
    gate.touch()
    assert sibling.result() == 42  # the other worker's call was not touched


def test_a_cancelled_future_is_done_for_wait_at_once(
    oex: offload.ProcessPoolExecutor, tmp_path: Path
) -> None:
    # concurrent.futures.wait counts a cancelled future as done only once it was notified
    # (CANCELLED_AND_NOTIFIED); shutdown(wait=True) waits that way. The call leaves the queue
    # at cancel(), so the wait must not depend on when the native side hears of it.
    gate = tmp_path / "gate"
    first = [oex.submit(calls.wait_for_file, str(gate), i) for i in range(2)]
    until(lambda: all(f.running() for f in first), "both workers to be busy")
    rest = [oex.submit(calls.add, i) for i in range(4)]  # two may wait in the workers
    queued = rest[-1]
    assert queued.cancel()
    done, not_done = concurrent.futures.wait([queued], timeout=0)
    assert (done, not_done) == ({queued}, set())
    assert queued.cancel() and queued.cancelled()  # a second cancel is a no-op, not an error
    gate.touch()
    assert [f.result() for f in first + rest[:2]] == [0, 1, 0, 1]


def test_a_memory_hog_under_a_limit_fails_only_its_own_future() -> None:
    # Under the address-space limit CPython's allocation fails inside the call: MemoryError
    # comes back to the future and the worker lives on.
    with offload.ProcessPoolExecutor(1, memory_limit=1 << 30) as ex:
        with pytest.raises(MemoryError):
            ex.submit(calls.hog, 8 << 30).result()
        assert ex.submit(calls.add, 2, 3).result() == 5


def test_a_timeout_kills_the_call_and_its_worker(oex: offload.ProcessPoolExecutor) -> None:
    with pytest.raises(offload.TimedOut) as e:
        oex.submit_with(calls.sleep_then, (60, 1), timeout=0.2).result()
    pid = e.value.pid
    assert pid is not None
    until(lambda: not alive(pid), f"worker {pid} to be killed")
    assert oex.submit(calls.add, 1).result() == 1


def test_the_executor_timeout_applies_to_every_call() -> None:
    with offload.ProcessPoolExecutor(1, timeout=0.2) as ex:
        with pytest.raises(offload.TimedOut):
            ex.submit(calls.sleep_then, 60, 1).result()
        assert ex.submit(calls.sleep_then, 0, 9).result() == 9


def test_unpicklable_calls_are_refused_at_once(oex: offload.ProcessPoolExecutor) -> None:
    with pytest.raises(offload.UnpicklableError, match="lambda"):
        oex.submit(lambda: 1)

    def local() -> int:
        return 1

    with pytest.raises(offload.UnpicklableError, match="local"):
        oex.submit(local)
    with pytest.raises(offload.UnpicklableError):
        oex.submit(calls.add, (x for x in range(3)))
    assert oex.submit(calls.add, 4).result() == 4


def test_a_worker_that_cannot_start_is_refused_at_once() -> None:
    with pytest.raises(offload.StartFailed):
        offload.ProcessPoolExecutor(1, python="/nonexistent/python3", start_timeout=5)


def test_a_worker_that_never_becomes_ready_is_refused(tmp_path: Path) -> None:
    silent = tmp_path / "silent-python"
    silent.write_text("#!/bin/sh\nexec sleep 600\n")
    silent.chmod(0o755)
    with pytest.raises(offload.StartFailed):
        offload.ProcessPoolExecutor(1, python=str(silent), start_timeout=1)
