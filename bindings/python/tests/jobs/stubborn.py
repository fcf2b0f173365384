"""Touches params["started"], then sleeps ignoring cancellation (only a kill ends it)."""
import os
import time
from typing import Any


def handle(params: Any, ctx: Any) -> Any:
    with open(params["started"], "w") as f:
        f.write(str(os.getpid()))
    while True:
        time.sleep(0.05)
