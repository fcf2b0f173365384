"""The benchmark's tasks (a module, so every executor finds them by reference)."""

import time


def inc(x: int) -> int:
    return x + 1


def spin(x: int) -> int:
    """Busy-waits 1 ms (the CPU is busy, no sleep)."""
    end = time.perf_counter_ns() + 1_000_000
    while time.perf_counter_ns() < end:
        pass
    return x
