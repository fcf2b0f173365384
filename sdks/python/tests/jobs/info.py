"""Reports what a job sees of its ctx and process."""

import os


def handle(params, ctx):
    try:
        channel_inherited = os.get_inheritable(3)
    except OSError:
        channel_inherited = None
    return {
        "id": ctx.id,
        "job": ctx.job,
        "params": params,
        "args": ctx.args,
        "deadline": ctx.deadline,
        "cancelled": ctx.cancelled,
        "module": __name__,
        "channel_env": os.environ.get("OFFLOAD_CHANNEL_FD"),
        "channel_inherited": channel_inherited,
    }
