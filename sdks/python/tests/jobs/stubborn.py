"""Ignores cancellation: a sync job blocked in time.sleep, or an async one that catches
asyncio.CancelledError; both still return a value."""

import asyncio
import time


def handle(params, ctx):
    if params.get("async"):
        return _async(params, ctx)  # a plain function returning a coroutine: run on the loop
    time.sleep(params["s"])
    return {"done": "anyway", "cancelled": ctx.cancelled, "reason": ctx.cancel_reason}


async def _async(params, ctx):
    try:
        await asyncio.sleep(params["s"])
    except asyncio.CancelledError:
        pass
    return {"done": "anyway", "cancelled": ctx.cancelled, "reason": ctx.cancel_reason}
