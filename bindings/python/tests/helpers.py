"""Shared helpers: the jobs folder, /proc reads, bounded waits on states (no timing thresholds:
deadlines are generous and only end a test that would otherwise hang)."""

from __future__ import annotations

import os
import time
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
JOBS = os.path.join(HERE, "jobs")


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pids_with_env(needle: str) -> list[int]:
    """Live processes whose environment holds ``needle`` (``NAME=value``)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if needle.encode() in env and alive(int(d)):
            out.append(int(d))
    return out


def until(pred: Callable[[], bool], what: str, deadline: float = 30.0) -> None:
    """Waits for ``pred()`` to hold (polls a state; fails the test after ``deadline`` s)."""
    end = time.monotonic() + deadline
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
