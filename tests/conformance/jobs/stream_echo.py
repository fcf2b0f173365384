"""Conformance fixture `stream_echo` (docs/protocol.md §10): copies the run's input stream to
its output stream; result {"bytes"}."""

def handle(params, ctx):
    with ctx.input_stream() as inp, ctx.output_stream() as out:
        total = 0
        while True:
            chunk = inp.read1(64 * 1024)
            if not chunk:
                break
            out.write(chunk)
            total += len(chunk)
    return {"bytes": total}
