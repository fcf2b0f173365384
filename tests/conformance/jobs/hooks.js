'use strict';
// Fixture "hooks": registers a shutdown hook (softKill(done) style) that emits the event
// "shutdown-hook", and a hard-kill hook that emits "kill-hook"; result null.

const offload = require('offload-worker');

let registered = false;

module.exports = async function hooks() {
  if (!registered) {
    registered = true;
    offload.softKill((done) => {
      offload.emitWorkerEvent('shutdown-hook', null);
      done();
    });
    offload.onHardKill(() => offload.emitWorkerEvent('kill-hook', null));
  }
  return null;
};
