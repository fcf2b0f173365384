"""Progress or events the runner must refuse; the exception reaches the job."""

import offload_worker


def handle(params, ctx):
    kind = params["kind"]
    if kind == "huge_progress":
        ctx.progress("x" * 100000)
    elif kind == "set_progress":
        ctx.progress({1, 2})
    elif kind == "receiver":
        ctx.emit("tick", 1, receiver="everyone")
    elif kind == "caught":
        try:
            ctx.progress("x" * 100000)
        except offload_worker.FrameTooLarge as e:
            return "caught: %s" % e
    return "sent"

