"""Spins on the CPU until the worker's CPU limit (RLIMIT_CPU) ends it."""
from typing import Any


def handle(params: Any, ctx: Any) -> Any:
    n = 0
    while True:
        n += 1
