"""No worker outlives a host that is SIGKILLed (read from /proc)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from helpers import HERE, alive, pids_with_env, until


def test_no_process_is_left_after_the_host_is_sigkilled(tmp_path: Path) -> None:
    mark = f"OFFLOAD_TEST_HOST={uuid.uuid4().hex}"
    env = dict(os.environ)
    env["OFFLOAD_TEST_HOST"] = mark.split("=", 1)[1]
    host = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "host.py"), str(tmp_path / "started")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert host.stdout is not None
        workers = json.loads(host.stdout.readline())
        assert len(workers) == 4 and all(alive(p) for p in workers)
        family = pids_with_env(mark)
        assert host.pid in family and set(workers) <= set(family)
        os.kill(host.pid, signal.SIGKILL)
        assert host.wait() == -signal.SIGKILL
        until(lambda: pids_with_env(mark) == [], f"every process of the host to be gone: {family}")
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
