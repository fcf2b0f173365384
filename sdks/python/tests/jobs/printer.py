"""Writes to stdout and stderr: the job's logs, never the channel."""

import sys


def handle(params, ctx):
    print("hello from stdout", params)
    print("hello from stderr", file=sys.stderr)
    return "printed"
