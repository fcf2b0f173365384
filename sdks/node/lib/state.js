'use strict';
// Process-wide state shared by every copy of this SDK loaded in the worker (the runner's copy,
// a copy a job installed in its own node_modules, the ee-core compatibility modules). It lives on
// globalThis under a registered symbol so that two copies still see the same current job.

const { AsyncLocalStorage } = require('node:async_hooks');
const { EventEmitter } = require('node:events');

const KEY = Symbol.for('offload-worker.state.v1');

if (!globalThis[KEY]) {
  Object.defineProperty(globalThis, KEY, {
    value: {
      // The JobContext of the job whose code is running (AsyncLocalStorage follows awaits,
      // timers and callbacks created inside the job).
      als: new AsyncLocalStorage(),
      // The running Worker, or null outside a worker.
      worker: null,
      // Broadcast events from the supervisor (`{"type":"event"}`), by name.
      events: new EventEmitter(),
    },
  });
  globalThis[KEY].events.setMaxListeners(0);
}

module.exports = globalThis[KEY];
