"""Conformance fixture `echo`: result = params (a sync handler); as a call, handle(x) returns x."""


def handle(params, ctx=None):
    return params
