"""An async def unload(): awaited on the runner's event loop at shutdown."""

import asyncio

MARKER = None


def handle(params, ctx):
    global MARKER
    MARKER = params["marker"]
    return "ran"


async def unload():
    await asyncio.sleep(0.02)
    with open(MARKER, "a") as f:
        f.write("async\n")
