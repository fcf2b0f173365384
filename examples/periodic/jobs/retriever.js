// The tutorial's "retriever": a CPU-heavy task run periodically in a child process. It works
// through its `urls` (here: a mock — hashing each name many times), reports progress, and
// fails when asked to (`failEvery`), so the scheduler's error counting can be seen.
const crypto = require('crypto');

let runs = 0; // the worker is resident: this counts the runs it served

module.exports = async function retriever(params, ctx) {
  runs += 1;
  const urls = (params && params.urls) || [];
  const rounds = Math.min(Number((params && params.rounds) || 20000), 1e6);
  if (params && params.failEvery && runs % params.failEvery === 0) {
    throw new Error(`run ${runs}: the source did not answer`);
  }
  const results = [];
  for (const [i, url] of urls.entries()) {
    let h = url;
    for (let r = 0; r < rounds; r++) h = crypto.createHash('sha256').update(h).digest('hex');
    results.push({ url, digest: h.slice(0, 12) });
    ctx.progress({ done: i + 1, total: urls.length });
    if (ctx.signal.aborted) throw ctx.signal.reason;
  }
  return { at: new Date().toISOString(), results };
};
