"""Round-trip benchmark of the Python runner (a benchmark, not a test).

Spawns ``python3 -m offload_worker`` on a socketpair exactly as a supervisor does, then sends
N sequential ``run`` frames (one in flight at a time) and times each until its ``result``.

    python3 sdks/python/bench_roundtrip.py [--n 5000] [--job echo] [--warmup 200]

``--job sleep`` with params {"ms": 0} measures the async (asyncio loop) path instead of the
sync (thread pool) one.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tests._harness import FIXTURES, spawn  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--job", default="echo", choices=["echo", "sleep"])
    opts = parser.parse_args()
    params = {"ms": 0} if opts.job == "sleep" else {"n": 1, "s": "payload"}

    started = time.perf_counter()
    pid, sock = spawn(jobs_dir=FIXTURES)
    reader = sock.makefile("rb")
    ready = json.loads(reader.readline())
    startup_ms = (time.perf_counter() - started) * 1000
    assert ready["type"] == "ready", ready

    def round_trip(i):
        sock.sendall(('{"type":"run","id":"%d","job":"%s","params":%s}\n'
                      % (i, opts.job, json.dumps(params))).encode())
        frame = json.loads(reader.readline())
        if frame.get("type") != "result" or frame.get("id") != str(i):
            raise SystemExit("unexpected frame: %r" % frame)

    for i in range(opts.warmup):
        round_trip(i)
    times = []
    t0 = time.perf_counter()
    for i in range(opts.n):
        t = time.perf_counter()
        round_trip(i)
        times.append(time.perf_counter() - t)
    total = time.perf_counter() - t0
    reader.close()  # the file object holds the fd too: close both so the worker sees EOF
    sock.close()
    os.waitpid(pid, 0)

    times.sort()

    def pct(p):
        return times[min(len(times) - 1, int(p / 100.0 * len(times)))] * 1e6

    print("python/%d.%d.%d runner, job %r, %d sequential round trips (after %d warm-up)"
          % (sys.version_info[:3] + (opts.job, opts.n, opts.warmup)))
    print("  spawn -> ready  %8.1f ms" % startup_ms)
    print("  p50             %8.1f us" % pct(50))
    print("  p99             %8.1f us" % pct(99))
    print("  max             %8.1f us" % (times[-1] * 1e6))
    print("  throughput      %8.0f jobs/s" % (opts.n / total))


if __name__ == "__main__":
    main()
