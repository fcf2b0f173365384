"""unload() raises: the shutdown logs it and still acks."""


def handle(params, ctx):
    return "ran"


def unload():
    raise ValueError("unload boom")
