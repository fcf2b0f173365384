"""Conformance fixture `echo`: result = params (a sync handler)."""


def handle(params, ctx):
    return params
