"""Conformance fixture `sleep`: waits params.ms milliseconds, then result "slept"; if cancelled
first, error named Cancelled. An async handler: a cancel cancels its asyncio task, which
interrupts the await (asyncio.CancelledError is answered as Cancelled)."""

import asyncio


async def handle(params, ctx):
    await asyncio.sleep(params["ms"] / 1000.0)
    return "slept"
