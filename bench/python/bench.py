#!/usr/bin/env python3
"""offload's ProcessPoolExecutor beside the standard library's, multiprocessing.Pool and loky
(when installed), each with 2 workers, on three workloads:

- a: N tiny tasks (``x + 1``) submitted at once, then every result awaited: tasks/s;
- b: the same task one at a time (submit, wait, next): p50 and p99 of the round trip;
- c: N/20 tasks that busy-wait 1 ms, submitted at once: tasks/s (2,000/s is the ideal on 2 cores).

    python3 bench/python/bench.py [--tasks 20000] [--runs 3] [--systems offload,stdlib,mp,loky]

Each (system, workload, run) is a fresh process (no executor inherits another's threads), with a
warm-up that is not counted; medians over the runs are printed. It measures the ``offload``
that ``import offload`` finds: install the release build (``pip install ./bindings/python``),
a debug build is several times slower.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import tasks  # noqa: E402

WORKERS = 2


def make(system: str) -> tuple[Any, Callable[[], None]]:
    """An executor-like object with submit(fn, x) -> future-like with .result()/.get()."""
    if system == "offload":
        import offload

        ex = offload.ProcessPoolExecutor(WORKERS, min_workers=WORKERS)
        return ex, ex.shutdown
    if system == "stdlib":
        import concurrent.futures

        ex2 = concurrent.futures.ProcessPoolExecutor(WORKERS)
        return ex2, ex2.shutdown
    if system == "loky":
        import loky

        ex3 = loky.get_reusable_executor(max_workers=WORKERS)
        return ex3, lambda: ex3.shutdown(wait=True)
    if system == "mp":
        import multiprocessing

        pool = multiprocessing.Pool(WORKERS)

        class Adapter:
            def submit(self, fn: Callable[[int], int], x: int) -> Any:
                r = pool.apply_async(fn, (x,))
                r.result = r.get  # type: ignore[attr-defined]
                return r

        def close() -> None:
            pool.close()
            pool.join()

        return Adapter(), close
    raise SystemExit(f"unknown system {system}")


def one(system: str, workload: str, n: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    ex, close = make(system)
    for f in [ex.submit(tasks.inc, i) for i in range(200)] + [ex.submit(tasks.spin, 0) for _ in range(4)]:
        f.result()
    startup = time.perf_counter() - t0
    out: dict[str, Any] = {"system": system, "workload": workload, "startup_s": startup}
    if workload == "a":
        t = time.perf_counter()
        futs = [ex.submit(tasks.inc, i) for i in range(n)]
        assert [f.result() for f in futs] == [i + 1 for i in range(n)]
        out["per_s"] = n / (time.perf_counter() - t)
    elif workload == "b":
        lat = []
        end = time.perf_counter() + 10
        for i in range(n):
            t = time.perf_counter()
            assert ex.submit(tasks.inc, i).result() == i + 1
            lat.append(time.perf_counter() - t)
            if t > end:
                break
        lat.sort()
        out["p50_us"] = lat[len(lat) // 2] * 1e6
        out["p99_us"] = lat[int(len(lat) * 0.99)] * 1e6
    elif workload == "c":
        m = max(n // 20, 10)
        t = time.perf_counter()
        futs = [ex.submit(tasks.spin, i) for i in range(m)]
        assert [f.result() for f in futs] == list(range(m))
        out["per_s"] = m / (time.perf_counter() - t)
    close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--systems", default="offload,stdlib,mp,loky")
    ap.add_argument("--workloads", default="abc")
    ap.add_argument("--one", nargs=2, metavar=("SYSTEM", "WORKLOAD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], args.tasks)), flush=True)
        return
    systems = [s for s in args.systems.split(",") if s]
    if "loky" in systems:
        try:
            import loky  # noqa: F401
        except ImportError:
            print("loky is not installed (pip install loky): left out", file=sys.stderr)
            systems.remove("loky")
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for _ in range(args.runs):
        for w in args.workloads:
            for s in systems:  # interleaved: each run visits every system once
                cmd = [sys.executable, __file__, "--tasks", str(args.tasks), "--one", s, w]
                line = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600).stdout
                results.setdefault((s, w), []).append(json.loads(line))
    print(f"{WORKERS} workers, {args.tasks} tasks (a), {max(args.tasks // 20, 10)} (c), medians of {args.runs} runs")
    print(f"{'system':<10} {'a tasks/s':>12} {'b p50 us':>10} {'b p99 us':>10} {'c tasks/s':>10} {'start s':>8}")
    for s in systems:
        def med(w: str, k: str) -> str:
            rs = results.get((s, w))
            return f"{statistics.median(r[k] for r in rs):,.0f}" if rs else "-"

        starts = [r["startup_s"] for w in args.workloads for r in results.get((s, w), [])]
        print(
            f"{s:<10} {med('a', 'per_s'):>12} {med('b', 'p50_us'):>10} {med('b', 'p99_us'):>10} "
            f"{med('c', 'per_s'):>10} {statistics.median(starts):>8.2f}"
        )


if __name__ == "__main__":
    main()
