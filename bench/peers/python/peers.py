#!/usr/bin/env python3
"""The Python peers of offload's pool benchmark, 2 worker processes each. Same workloads and
JSON line format as tests/conformance/benches/pool.rs:

    python3 peers.py --workload a|b|c [--system multiprocessing] [--tasks N] [--runs R]
                     [--time-limit SECS] [--chunksize 1]

``--system``:

- ``multiprocessing``: ``multiprocessing.Pool(2)``; a: ``pool.map_async(inc, range(N),
  chunksize)``, every task submitted at once (chunksize 1, the default here, sends each task on
  its own as offload and the other peers do; Pool.map's own default, N / (4 * processes),
  batches thousands of tasks per message instead); b: ``pool.apply(inc, (x,))`` one at a time;
  c: ``pool.map_async(spin, range(N), chunksize)``.
- ``py-executor``: ``concurrent.futures.ProcessPoolExecutor(2)`` (the platform's default start
  method); ``offload-executor``: ``offload.ProcessPoolExecutor(2)`` (bindings/python: prefetch 2,
  both workers started by the constructor); ``loky``: ``loky.get_reusable_executor(2)``
  (joblib's). For these, a and c are ``ex.submit(f, x)`` for every task, then every
  ``result()``; b is ``ex.submit(inc, x).result()`` one at a time.
"""

import argparse
import json
import multiprocessing
import os
import re
import sys
import time

WORKERS = 2


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ptasks import inc, spin  # noqa: E402 (a module: executors send functions by reference)


_SWITCHES = re.compile(r"^(?:non)?voluntary_ctxt_switches:\s+(\d+)", re.M)


def proc_usage(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        rest = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(rest[11]) + int(rest[12])) / 100.0
        switches = 0
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/status") as f:
                    switches += sum(int(m) for m in _SWITCHES.findall(f.read()))
            except OSError:
                pass
        return cpu, switches
    except OSError:
        return 0.0, 0


def usage_now(pids):
    sup_cpu, sup_sw = proc_usage("self")
    w_cpu = w_sw = 0
    for pid in pids:
        c, s = proc_usage(pid)
        w_cpu += c
        w_sw += s
    return sup_cpu, sup_sw, w_cpu, w_sw


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    i = min(len(sorted_values), max(1, -(-len(sorted_values) * p // 1))) - 1
    return sorted_values[int(i)]


class _Executor:
    """One of the executors behind multiprocessing.Pool's calls used below."""

    def __init__(self, system):
        if system == "offload-executor":
            import offload

            self.ex = offload.ProcessPoolExecutor(WORKERS)
            self.pids = self.ex.pids
            self.note = "offload.ProcessPoolExecutor(2), prefetch 2; a, c: submit all, then result()"
        elif system == "loky":
            import loky

            self.ex = loky.get_reusable_executor(max_workers=WORKERS)
            self.pids = lambda: list(self.ex._processes)  # noqa: SLF001 (no public accessor)
            self.note = "loky.get_reusable_executor(2); a, c: submit all, then result()"
        else:
            import concurrent.futures

            self.ex = concurrent.futures.ProcessPoolExecutor(WORKERS)
            self.pids = lambda: list(self.ex._processes)  # noqa: SLF001 (no public accessor)
            self.note = "concurrent.futures.ProcessPoolExecutor(2); a, c: submit all, then result()"

    def map(self, fn, xs, chunksize=1):
        return [f.result() for f in [self.ex.submit(fn, x) for x in xs]]

    def map_async(self, fn, xs, chunksize=1):
        futs = [self.ex.submit(fn, x) for x in xs]

        class Result:
            @staticmethod
            def get(timeout):
                end = time.perf_counter() + timeout
                try:
                    return [f.result(timeout=max(0.0, end - time.perf_counter())) for f in futs]
                except TimeoutError as e:  # concurrent.futures.TimeoutError on 3.9/3.10
                    raise multiprocessing.TimeoutError() from e

        return Result()

    def apply(self, fn, args):
        return self.ex.submit(fn, *args).result()

    def terminate(self):
        self.ex.shutdown(wait=True)

    def join(self):
        pass


def one_run(args, run):
    fn = spin if args.workload == "c" else inc
    plus = 0 if args.workload == "c" else 1
    t0 = time.perf_counter()
    if args.system == "multiprocessing":
        pool = multiprocessing.Pool(WORKERS)
    else:
        pool = _Executor(args.system)
    # (c): about six seconds of 1 ms tasks, as every row of bench/peers does before counting.
    if args.warmup is not None:
        warm = args.warmup
    elif args.workload == "c":
        warm = 12000
    else:
        warm = min(1000, max(100, args.tasks // 100))
    assert pool.map(fn, range(warm), chunksize=1) == [x + plus for x in range(warm)]
    start_ms = (time.perf_counter() - t0) * 1e3
    if args.system == "multiprocessing":
        pids = [p.pid for p in pool._pool]  # noqa: SLF001 (no public accessor)
    else:
        pids = pool.pids()
    before = usage_now(pids)
    errors = 0
    first_error = None
    timed_out = False
    lat = []
    started = time.perf_counter()
    deadline = started + args.time_limit
    done = 0
    if args.workload == "b":
        for x in range(args.tasks):
            t = time.perf_counter_ns()
            v = pool.apply(fn, (x,))
            lat.append((time.perf_counter_ns() - t) / 1000)
            if v != x + 1:
                errors += 1
                first_error = first_error or f"expected {x + 1}, got {v!r}"
            done += 1
            if done % 256 == 0 and time.perf_counter() > deadline:
                timed_out = True
                break
    else:
        r = pool.map_async(fn, range(args.tasks), chunksize=args.chunksize)
        try:
            values = r.get(timeout=args.time_limit)
            done = len(values)
            for x, v in enumerate(values):
                if v != x + plus:
                    errors += 1
                    first_error = first_error or f"expected {x + plus}, got {v!r}"
        except multiprocessing.TimeoutError:
            timed_out = True
    secs = time.perf_counter() - started
    after = usage_now(pids)
    pool.terminate()
    pool.join()
    lat.sort()
    n = max(1, done)
    out = {
        "system": args.system,
        "workload": args.workload,
        "run": run,
        "tasks": done,
        "secs": secs,
        "per_sec": done / secs,
        "p50_us": percentile(lat, 0.5),
        "p99_us": percentile(lat, 0.99),
        "workers": WORKERS,
        "note": f"Pool(2), chunksize {args.chunksize}; b: apply()" if args.system == "multiprocessing" else pool.note,
        "start_ms": start_ms,
        "errors": errors,
        "first_error": first_error,
        "timed_out": timed_out,
        "sup_cpu_us_per_task": (after[0] - before[0]) * 1e6 / n,
        "workers_cpu_us_per_task": (after[2] - before[2]) * 1e6 / n,
        "sup_switches_per_task": (after[1] - before[1]) / n,
        "workers_switches_per_task": (after[3] - before[3]) / n,
    }
    if args.system == "offload-executor":
        out["concurrency"] = 2
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workload", choices="abc", required=True)
    p.add_argument("--system", default="multiprocessing",
                   choices=["multiprocessing", "py-executor", "offload-executor", "loky"])
    p.add_argument("--tasks", type=int)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--time-limit", type=float, default=60.0)
    p.add_argument("--chunksize", type=int, default=1)
    p.add_argument("--warmup", type=int, help="tasks before the count (default 12,000 for (c))")
    args = p.parse_args()
    if args.tasks is None:
        args.tasks = 5_000 if args.workload == "c" else 100_000
    failed = False
    for run in range(1, args.runs + 1):
        try:
            print(json.dumps(one_run(args, run)), flush=True)
        except Exception as e:  # noqa: BLE001 (reported as the run's result)
            failed = True
            print(json.dumps({"system": args.system, "workload": args.workload, "run": run, "error": repr(e)}), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
