// A CPU-heavy Node job: counts the primes below `limit` with a sieve, reporting progress.
module.exports = async function primes(params, ctx) {
  const limit = Math.max(2, Math.min(Number((params && params.limit) || 1e6), 5e8));
  const sieve = new Uint8Array(limit + 1);
  let count = 0;
  const step = Math.max(1, Math.floor(limit / 20));
  for (let i = 2; i <= limit; i++) {
    if (!sieve[i]) {
      count++;
      for (let j = i * i; j <= limit; j += i) sieve[j] = 1;
    }
    if (i % step === 0) {
      ctx.progress({ done: i, total: limit });
      if (ctx.signal.aborted) throw ctx.signal.reason;
      await new Promise((r) => setImmediate(r)); // let cancel and progress through
    }
  }
  return { limit, primes: count };
};
