"""Reloads another job module: offload_worker.reload(name or path)."""

import offload_worker


def handle(params, ctx):
    module = offload_worker.reload(params["job"])
    return module.__name__
