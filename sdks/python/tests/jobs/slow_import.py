"""A job file whose import blocks (its top-level code is job code, run off the reader thread)."""

import time

time.sleep(30)


def handle(params, ctx):
    return "imported"
