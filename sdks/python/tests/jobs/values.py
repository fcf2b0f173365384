"""Returns values that JSON cannot carry, chosen by params."""

import math


def handle(params, ctx):
    kind = params["kind"]
    if kind == "set":
        return {1, 2}
    if kind == "nan":
        return [math.nan]
    if kind == "circular":
        x = []
        x.append(x)
        return x
    if kind == "surrogate":
        return "\udcff"
    if kind == "bytes":
        return b"raw"
    return kind
