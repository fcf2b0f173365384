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
