"""Callables the executor tests send to workers (importable by reference)."""

from __future__ import annotations

import ctypes
import os
import signal
import time


def add(a: int, b: int = 0) -> int:
    return a + b


def square(x: int) -> int:
    return x * x


def pid() -> int:
    return os.getpid()


class Boom(Exception):
    pass


def boom(message: str) -> None:
    raise Boom(message)


def chained() -> None:
    try:
        raise KeyError("inner")
    except KeyError as e:
        raise ValueError("outer") from e


def sleep_then(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value


def wait_for_file(path: str, value: int) -> int:
    """Blocks until ``path`` exists (a gate the test opens), then returns ``value``."""
    while not os.path.exists(path):
        time.sleep(0.01)
    return value


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def segfault() -> None:
    ctypes.string_at(0)


def exit3() -> None:
    os._exit(3)


def hog(n_bytes: int) -> int:
    data = bytearray(n_bytes)
    return len(data)


def report(n: int) -> str:
    """Reports ``n`` progress values through offload.progress, then returns."""
    import offload

    for i in range(n):
        assert offload.progress({"done": i + 1})
    return "reported"


def report_late(path: str) -> bool:
    """Starts a thread that reports progress after this call returned (dropped), and writes
    whether offload.progress saw a call when it ran."""
    import threading

    import offload

    def late() -> None:
        time.sleep(0.2)
        with open(path, "w") as f:
            f.write(str(offload.progress("late")))

    threading.Thread(target=late).start()
    return offload.progress("early")


def wait_then_kill(path: str) -> None:
    """Blocks until ``path`` exists, then SIGKILLs its own worker."""
    while not os.path.exists(path):
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGKILL)


def report_object() -> None:
    import offload

    offload.progress(object())


def spin() -> None:
    """Spins on the CPU until the worker's CPU limit ends it."""
    n = 0
    while True:
        n += 1


_held: list[bytearray] = []


def hold(n_bytes: int) -> int:
    """Allocates and touches ``n_bytes`` and keeps them for the life of the worker; returns
    its pid."""
    block = bytearray(n_bytes)
    for i in range(0, n_bytes, 4096):
        block[i] = 1
    _held.append(block)
    return os.getpid()
