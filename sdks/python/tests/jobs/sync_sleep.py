"""Sleeps params.ms in a sync handler with ctx.sleep(), which raises Cancelled when cancelled."""


def handle(params, ctx):
    ctx.sleep(params["ms"] / 1000.0)
    return "slept"
