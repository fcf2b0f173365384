"""Conformance fixture `fd_write` (docs/protocol.md §9): writes "<text> <index>\\n" to each
descriptor passed with the run (a socket.socket or a file object) and closes it; result
{"fds": n}."""


def handle(params, ctx):
    fds = ctx.take_fds()
    for i, f in enumerate(fds):
        data = ("%s %d\n" % (params["text"], i)).encode()
        with f:
            if hasattr(f, "sendall"):
                f.sendall(data)
            else:
                f.write(data)
    return {"fds": len(fds)}
