"""The executor's built-in job: unpickles ``(fn, args, kwargs)``, calls it, pickles what it
returned or raised. Run by the Python worker SDK (``sdks/python``) in the executor's workers;
the host's ``sys.path`` arrives in ``OFFLOAD_EXECUTOR_PATH`` so functions are found by
reference, as with the standard library's executor."""

import base64
import os
import pickle
import sys
import traceback
from typing import Any

# The host's path first, in its order (as the standard library's spawned workers get it), then
# what the worker has besides (the SDK's folder).
_host = [e for e in os.environ.get("OFFLOAD_EXECUTOR_PATH", "").split(os.pathsep) if e]
sys.path[:] = _host + [p for p in sys.path if p not in _host]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _exception(e: BaseException) -> bytes:
    """``e`` pickled, or a RuntimeError naming it when it does not survive a round trip."""
    try:
        data = pickle.dumps(e, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)
        return data
    except Exception as p:
        stand_in = RuntimeError(f"{type(e).__name__}: {e} (not picklable: {p})")
        return pickle.dumps(stand_in, protocol=pickle.HIGHEST_PROTOCOL)


def handle(params: Any, ctx: Any) -> Any:
    try:
        fn, args, kwargs = pickle.loads(base64.b64decode(params["call"]))
        value = fn(*args, **kwargs)
        return {"value": _b64(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))}
    except BaseException as e:  # what the call raised, as the standard library reports it
        return {"error": _b64(_exception(e)), "traceback": traceback.format_exc()}
