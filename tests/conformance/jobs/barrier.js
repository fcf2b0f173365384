'use strict';
// Fixture "barrier": waits until params.n barrier jobs are running at once in this process, then
// result params.n (needs concurrency >= n). `exports.handle`: the module is an object with handle().

const rounds = new Map(); // n -> { arrived, release, released }

function round(n) {
  let r = rounds.get(n);
  if (!r) {
    r = { arrived: 0 };
    r.released = new Promise((resolve) => (r.release = resolve));
    rounds.set(n, r);
  }
  return r;
}

exports.handle = async function barrier(params, ctx) {
  const n = params.n;
  const r = round(n);
  r.arrived += 1;
  if (r.arrived >= n) {
    rounds.delete(n); // the next n jobs form a new round
    r.release();
  }
  await Promise.race([
    r.released,
    new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })),
  ]);
  return n;
};
