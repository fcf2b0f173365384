"""Conformance fixture `stream_make` (docs/protocol.md §10): writes params["bytes"] of the
pattern (a 64 KiB block, byte i = (i * 7 + 3) mod 256, repeated) to the run's output stream, a
progress {"written"} after each chunk; result {"bytes", "crc"}."""

import zlib

CHUNK = 64 * 1024
BLOCK = bytes((i * 7 + 3) % 256 for i in range(CHUNK))


def handle(params, ctx):
    written, crc = 0, 0
    with ctx.output_stream() as out:
        while written < params["bytes"]:
            chunk = BLOCK[:min(CHUNK, params["bytes"] - written)]
            out.write(chunk)
            crc = zlib.crc32(chunk, crc)
            written += len(chunk)
            ctx.progress({"written": written})
    return {"bytes": written, "crc": crc}
