'use strict';
// The addon's promises do not keep Node's event loop alive by themselves; while a job, a call
// or a pool operation is pending, one ref'd timer does (like a child process handle would).
// The timer is made once and only ref'd and unref'd after: one job at a time (a round trip)
// would otherwise make and clear an interval per job.

let pending = 0;
let timer = null;

/** Keep the loop alive until the returned function is called (idempotent). */
function hold() {
  if (pending++ === 0) {
    if (timer === null) timer = setInterval(() => {}, 1 << 30);
    else timer.ref();
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--pending === 0) timer.unref();
  };
}

/** `promise`, keeping the loop alive until it settles. */
function keep(promise) {
  const release = hold();
  promise.then(release, release);
  return promise;
}

module.exports = { hold, keep };
