"""unload() appends a line to the marker file the last run named (params["marker"])."""

MARKER = None


def handle(params, ctx):
    global MARKER
    MARKER = params["marker"]
    return "ran"


def unload():
    if MARKER:
        with open(MARKER, "a") as f:
            f.write("unloaded\n")
