"""Conformance fixture `fail`: throws an error whose message is params.message (sync)."""


def handle(params, ctx):
    raise RuntimeError(params["message"])
