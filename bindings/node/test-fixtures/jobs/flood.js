// Named events of `bytes` bytes each, as fast as they can be sent: `n` of them, then `n`; with
// `n: null` until the job is stopped (it yields every 1,000 so a cancel can reach it).
module.exports = async (params, ctx) => {
  const pad = 'x'.repeat(params.bytes || 0);
  for (let i = 0; params.n == null || i < params.n; i++) {
    ctx.emit('row', { i, pad }, 'all');
    if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
  }
  return params.n;
};
