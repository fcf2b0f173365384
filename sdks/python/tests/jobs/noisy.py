"""Frames from several threads at once: params.count progress frames of params.size bytes."""


def handle(params, ctx):
    pad = "p" * params["size"]
    for i in range(params["count"]):
        ctx.progress({"i": i, "pad": pad})
    return params["count"]
