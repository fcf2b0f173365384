'use strict';
// Fixture "stream_sum" (docs/protocol.md §10): reads the run's input stream to its end;
// result {bytes, crc} (CRC-32 as zlib's).

const zlib = require('node:zlib');

module.exports = async function streamSum(params, ctx) {
  let bytes = 0;
  let crc = 0;
  for await (const chunk of ctx.inputStream) {
    bytes += chunk.length;
    crc = zlib.crc32(chunk, crc);
  }
  return { bytes, crc };
};
