"""unload() never returns: the shutdown abandons it when the grace is over."""

import threading


def handle(params, ctx):
    return "ran"


def unload():
    threading.Event().wait()
