'use strict';
// Fixture "stream_make" (docs/protocol.md §10): writes params.bytes of the pattern (a 64 KiB
// block, byte i = (i * 7 + 3) mod 256, repeated) to the run's output stream, honouring
// backpressure, a progress {written} after each chunk; result {bytes, crc}.

const { once } = require('node:events');
const zlib = require('node:zlib');

const CHUNK = 64 * 1024;
const BLOCK = Buffer.from(Array.from({ length: CHUNK }, (_, i) => (i * 7 + 3) % 256));

module.exports = async function streamMake(params, ctx) {
  const out = ctx.outputStream;
  let written = 0;
  let crc = 0;
  while (written < params.bytes) {
    const chunk = BLOCK.subarray(0, Math.min(CHUNK, params.bytes - written));
    crc = zlib.crc32(chunk, crc);
    written += chunk.length;
    if (!out.write(chunk)) await once(out, 'drain');
    ctx.progress({ written });
  }
  out.end();
  await once(out, 'finish');
  return { bytes: written, crc };
};
