import os


def handle(params, ctx):
    return {"params": params, "pid": os.getpid()}
