// Sleeps params.ms (default a minute); answers Cancelled when its signal aborts.
const { setTimeout: sleep } = require('node:timers/promises');
module.exports = async (params, ctx) => {
  await sleep((params && params.ms) || 60000, undefined, { signal: ctx.signal });
  return 'slept';
};
