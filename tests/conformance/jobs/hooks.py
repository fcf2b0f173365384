"""Conformance fixture `hooks`: registers a shutdown hook (an async def) that emits the event
"shutdown-hook" and a hard-kill hook that emits "kill-hook"; result None."""

import offload_worker

_registered = False


async def _on_shutdown():
    offload_worker.emit("shutdown-hook")


def handle(params, ctx):
    global _registered
    if not _registered:
        _registered = True
        offload_worker.on_shutdown(_on_shutdown)
        offload_worker.on_hard_kill(lambda: offload_worker.emit("kill-hook"))
    return None
