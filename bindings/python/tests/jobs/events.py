from typing import Any


def handle(params: Any, ctx: Any) -> Any:
    for i in range(params["n"]):
        ctx.emit("step", {"i": i}, "job" if i % 2 else "task")
    ctx.progress("half")
    ctx.emit("last", None)
    return "ok"
