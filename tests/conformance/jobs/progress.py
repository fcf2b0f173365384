"""Conformance fixture `progress`: progress {"i": i} for i in 0..params.count in order, then
result params.count (an async handler)."""

import asyncio


async def handle(params, ctx):
    for i in range(params["count"]):
        ctx.progress({"i": i})
        await asyncio.sleep(0)
    return params["count"]
