'use strict';
// The addon's promises do not keep Node's event loop alive by themselves; while a job, a call
// or a pool operation is pending, one ref'd timer does (like a child process handle would).

let pending = 0;
let timer = null;

/** Keep the loop alive until the returned function is called (idempotent). */
function hold() {
  pending += 1;
  if (timer === null) timer = setInterval(() => {}, 1 << 30);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    pending -= 1;
    if (pending === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  };
}

/** `promise`, keeping the loop alive until it settles. */
function keep(promise) {
  const release = hold();
  promise.then(release, release);
  return promise;
}

module.exports = { hold, keep };
