'use strict';
// Fixture "sleep": waits params.ms milliseconds, then result "slept"; when ctx.signal aborts
// first (cancel, shutdown after its grace), it rejects with the signal's reason, which the
// runner answers as an error named Cancelled. An async function export.

module.exports = async function sleep(params, ctx) {
  const { signal } = ctx;
  signal.throwIfAborted();
  await new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, params.ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return 'slept';
};
