"""Allocates params["bytes"] bytes, touches every page and keeps them for the life of the
worker; returns the worker's pid."""
import os
from typing import Any

_held: list[bytearray] = []


def handle(params: Any, ctx: Any) -> Any:
    block = bytearray(params["bytes"])
    for i in range(0, len(block), 4096):
        block[i] = 1
    _held.append(block)
    return os.getpid()
