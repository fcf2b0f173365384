"""offload.ProcessPoolExecutor's prefetch (a call waiting in a busy worker) without giving up
"a crash fails only its own future": the calls that were only waiting behind a call that
killed its worker are run again elsewhere; a timeout counts from the moment a call begins.
Then progress reports (``offload.progress``) reaching ``on_progress``."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import calls
import offload
from helpers import alive, until


def test_calls_waiting_behind_a_crash_run_again_on_the_next_worker(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with offload.ProcessPoolExecutor(1, prefetch=3) as ex:
        (first,) = ex.pids()
        dying = ex.submit(calls.wait_then_kill, str(gate))
        waiting = [ex.submit(calls.pid) for _ in range(2)]
        until(dying.running, "the first call to be sent to the worker")
        for f in waiting:  # all three are in the one worker
            until(f.running, "the calls to be sent to the worker")
        gate.touch()
        with pytest.raises(offload.WorkerCrashed) as e:
            dying.result()
        assert e.value.pid == first and not alive(first)
        pids = {f.result() for f in waiting}  # not failed: run again on the replacement
        assert first not in pids and len(pids) == 1
        assert ex.submit(calls.add, 1, 2).result() == 3


def test_a_timeout_counts_from_the_begin_and_kills_only_its_call(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with offload.ProcessPoolExecutor(1, prefetch=2) as ex:
        (first,) = ex.pids()
        blocker = ex.submit(calls.wait_for_file, str(gate), 7)
        behind = ex.submit_with(calls.add, (1, 2), timeout=2)
        until(behind.running, "the second call to be sent to the worker")
        time.sleep(2.5)  # longer than its timeout, spent waiting behind the first call
        gate.touch()
        assert blocker.result() == 7 and behind.result() == 3
        # A call that runs past its timeout is killed with its worker; the call waiting
        # behind it runs again on the replacement.
        slow = ex.submit_with(calls.sleep_then, (60, 1), timeout=0.3)
        after = ex.submit(calls.pid)
        with pytest.raises(offload.TimedOut) as e:
            slow.result()
        assert e.value.pid == first
        until(lambda: not alive(first), f"worker {first} to be killed")
        assert after.result() != first


def test_prefetch_one_grows_on_demand_and_more_needs_every_worker() -> None:
    with offload.ProcessPoolExecutor(2, prefetch=1) as ex:
        assert len(ex.pids()) == 1  # min_workers defaults to 1 without prefetch
        assert ex.submit(calls.add, 2).result() == 2
    with pytest.raises(offload.InvalidArgument, match="min_workers"):
        offload.ProcessPoolExecutor(2, min_workers=1, prefetch=2)
    with pytest.raises(offload.InvalidArgument, match="prefetch"):
        offload.ProcessPoolExecutor(2, prefetch=0)


@contextlib.contextmanager
def _opened(*gates: Path) -> Iterator[None]:
    """Opens the gates on the way out, so a failed test does not leave calls blocked."""
    try:
        yield
    finally:
        for g in gates:
            g.touch()


def test_a_call_waiting_behind_a_long_one_moves_to_the_worker_that_frees_up(
    tmp_path: Path,
) -> None:
    long_gate, short_gate = tmp_path / "long", tmp_path / "short"
    with offload.ProcessPoolExecutor(2, prefetch=2) as ex, _opened(long_gate, short_gate):
        long = ex.submit(calls.wait_for_file, str(long_gate), 1)
        short = ex.submit(calls.wait_for_file, str(short_gate), 2)
        until(lambda: long.running() and short.running(), "a call running in each worker")
        waiting = [ex.submit(calls.pid) for _ in range(2)]  # one waits behind each call
        until(lambda: all(f.running() for f in waiting), "the calls to wait in the workers")
        short_gate.touch()
        assert short.result() == 2
        # Both run on the worker that freed up while the long call still runs.
        assert len({f.result(timeout=30) for f in waiting}) == 1
        assert not long.done()
        long_gate.touch()
        assert long.result() == 1
        assert ex.submit(calls.add, 3).result() == 3


def test_every_progress_of_a_burst_reaches_a_slow_on_progress() -> None:
    # 20,000 reports in a burst to a callback slower than the call: the oldest were dropped
    # past 256 before backpressure; now the worker is read only as fast as they are delivered.
    n = 20000
    seen: list[object] = []

    def slow(value: object) -> None:
        seen.append(value)
        if len(seen) % 100 == 0:
            time.sleep(0.001)

    with offload.ProcessPoolExecutor(1) as ex:
        assert ex.submit_with(calls.report, (n,), on_progress=slow).result() == "reported"
        assert seen == [{"done": i} for i in range(1, n + 1)]
        # Calls without a watcher are not held by anything.
        assert list(ex.map(calls.add, range(200))) == list(range(200))


def test_progress_reaches_on_progress_in_order_before_the_result(tmp_path: Path) -> None:
    assert offload.progress("outside a worker") is False
    with offload.ProcessPoolExecutor(2) as ex:
        seen: list[object] = []
        fut = ex.submit_with(calls.report, (5,), on_progress=seen.append)
        assert fut.result() == "reported"
        assert seen == [{"done": i} for i in range(1, 6)]
        # Reported from a thread after its call returned: dropped, and progress() says so.
        late = tmp_path / "late"
        seen.clear()
        assert ex.submit_with(calls.report_late, (str(late),), on_progress=seen.append).result() is True
        until(lambda: late.exists() and late.read_text() == "False", "the late report")
        assert ex.submit(calls.add, 1).result() == 1
        assert seen == ["early"]
        # Not JSON: the call raises TypeError, the executor goes on.
        with pytest.raises(TypeError):
            ex.submit_with(calls.report_object, (), on_progress=seen.append).result()
