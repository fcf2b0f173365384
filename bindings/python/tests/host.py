"""A host for test_host_kill: starts a Pool and an executor, each with a busy worker, prints
every worker's pid as one JSON line, then waits to be killed."""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import calls  # noqa: E402
import offload  # noqa: E402
from helpers import JOBS  # noqa: E402

started = sys.argv[1]
pool = offload.Pool(JOBS, min=2, max=2, retries=0)
busy = pool.submit("stubborn", {"started": started})
ex = offload.ProcessPoolExecutor(2, min_workers=2)
running = ex.submit(calls.sleep_then, 3600, 1)
while not (os.path.exists(started) and running.running()):
    time.sleep(0.01)
print(json.dumps(pool.pids() + ex.pids()), flush=True)
sys.stdin.read()
