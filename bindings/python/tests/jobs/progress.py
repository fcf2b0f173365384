from typing import Any


def handle(params: Any, ctx: Any) -> Any:
    for i in range(params["n"]):
        ctx.progress({"done": i + 1, "total": params["n"]})
    return "ok"
