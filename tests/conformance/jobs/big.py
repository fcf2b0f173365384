"""Conformance fixture `big`: result = a string of params.bytes 'x' characters (sync)."""


def handle(params, ctx):
    return "x" * params["bytes"]
