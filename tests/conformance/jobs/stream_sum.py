"""Conformance fixture `stream_sum` (docs/protocol.md §10): reads the run's input stream to
its end; result {"bytes", "crc"} (CRC-32 as zlib's)."""

import zlib


def handle(params, ctx):
    total, crc = 0, 0
    with ctx.input_stream() as f:
        while True:
            chunk = f.read(64 * 1024)
            if not chunk:
                break
            total += len(chunk)
            crc = zlib.crc32(chunk, crc)
    return {"bytes": total, "crc": crc}
