import os
from typing import Any


def handle(params: Any, ctx: Any) -> Any:
    return {"params": params, "pid": os.getpid()}
