"""A job in a subfolder: job name "sub/nested"."""


def handle(params, ctx):
    return "nested"
