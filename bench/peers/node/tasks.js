// The two tasks every Node peer runs: inc (x+1) and spin (busy-waits 1 ms, returns x).
'use strict';

function inc(x) {
  return x + 1;
}

function spin(x) {
  const end = process.hrtime.bigint() + 1000000n;
  while (process.hrtime.bigint() < end);
  return x;
}

module.exports = { inc, spin };
