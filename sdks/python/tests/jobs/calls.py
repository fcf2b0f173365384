"""Functions reachable through `call` (top-level, defined here, not starting with "_")."""

import asyncio
from os import getcwd  # imported, not defined here: not callable through `call`

VALUE = 3


def handle(params, ctx):
    return "handled"


def add(a, b):
    return a + b


async def aadd(a, b):
    await asyncio.sleep(0)
    return a + b


def _private():
    return "secret"


def _use():
    return getcwd
