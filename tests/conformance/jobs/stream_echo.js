'use strict';
// Fixture "stream_echo" (docs/protocol.md §10): copies the run's input stream to its output
// stream (stream.pipeline: backpressure both ways); result {bytes}.

const { pipeline } = require('node:stream/promises');

module.exports = async function streamEcho(params, ctx) {
  let bytes = 0;
  const input = ctx.inputStream;
  input.on('data', (c) => {
    bytes += c.length;
  });
  await pipeline(input, ctx.outputStream);
  return { bytes };
};
