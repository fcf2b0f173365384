"""The Python peers' tasks, in a module of their own: executors send functions by reference,
and offload's workers cannot find functions of a script's ``__main__``."""

import time


def inc(x):
    return x + 1


def spin(x):
    end = time.perf_counter_ns() + 1_000_000
    while time.perf_counter_ns() < end:
        pass
    return x
