"""Never ends and never looks at ctx: a CPU loop in a worker thread."""


def handle(params, ctx):
    n = 0
    while True:
        n += 1
