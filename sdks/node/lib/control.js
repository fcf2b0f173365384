'use strict';
// The worker's control side (docs/protocol.md): flow control (`busy` / `ready`, as
// load-process-manager's worker.busy() / worker.ready()), the heap a `pong` reports, and the
// hooks of a soft kill (`shutdown`: onShutdown / softKill) and a hard kill (the `kill` notice:
// onHardKill / hardKill). Hooks live in the process-wide state, like the event listeners.

const util = require('node:util');
const state = require('./state');
const { writeStderr } = require('./settings');

function hooks() {
  if (!state.hooks) state.hooks = { shutdown: [], kill: [] };
  return state.hooks;
}

function worker(what) {
  if (!state.worker) throw new Error(`offload-worker: ${what}() called outside an offload worker`);
  return state.worker;
}

/** Flow control: the supervisor sends no new job to this worker until ready(). */
function busy() {
  worker('busy').send({ type: 'busy' });
}

/** Flow control: take jobs again after busy(). */
function ready() {
  worker('ready').send({ type: 'ready' });
}

/** Emit a named event to the application (receiver "all"), tied to no job: for hooks and
 * background work. */
function emitWorkerEvent(name, data) {
  worker('emitWorkerEvent').sendEvent(name, data, 'all', null);
}

/**
 * Run `fn` when the supervisor asks this worker to stop gracefully (`shutdown`, SIGTERM): at
 * once, while running jobs finish. `fn()` may return a promise, or take a `done` callback
 * (load-process-manager's softKill(done)). The shutdown's ack and the exit wait for every hook
 * and every job, for the grace (at least 1 s); a hook still pending then is abandoned.
 * Returns a function that removes the hook.
 */
function onShutdown(fn) {
  if (typeof fn !== 'function') throw new TypeError('onShutdown(fn): fn must be a function');
  hooks().shutdown.push(fn);
  return () => remove(hooks().shutdown, fn);
}

/** Run `fn` on the supervisor's hard-kill notice (`kill`), before SIGKILL: synchronous work
 * only (the process exits right after the hooks). Returns a function that removes the hook. */
function onHardKill(fn) {
  if (typeof fn !== 'function') throw new TypeError('onHardKill(fn): fn must be a function');
  hooks().kill.push(fn);
  return () => remove(hooks().kill, fn);
}

function remove(list, fn) {
  const i = list.indexOf(fn);
  if (i >= 0) list.splice(i, 1);
}

/** Starts every shutdown hook; the promise settles when all have, or after `budgetMs`. */
function runShutdownHooks(budgetMs) {
  const list = hooks().shutdown.slice();
  if (list.length === 0) return Promise.resolve();
  const each = list.map((fn) => {
    const report = (err) =>
      writeStderr(`offload worker: a shutdown hook failed: ${err && err.stack ? err.stack : util.inspect(err)}\n`);
    try {
      if (fn.length >= 1) {
        return new Promise((resolve) => {
          const r = fn((err) => {
            if (err) report(err);
            resolve();
          });
          if (r && typeof r.then === 'function') r.then(undefined, report);
        });
      }
      return Promise.resolve(fn()).then(undefined, report);
    } catch (e) {
      report(e);
      return Promise.resolve();
    }
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      writeStderr('offload worker: a shutdown hook did not finish within the grace; abandoned\n');
      resolve();
    }, budgetMs);
    Promise.all(each).then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Calls every hard-kill hook (synchronously; errors go to stderr). */
function runKillHooks() {
  for (const fn of hooks().kill.slice()) {
    try {
      fn();
    } catch (e) {
      writeStderr(`offload worker: a hard-kill hook failed: ${e && e.stack ? e.stack : util.inspect(e)}\n`);
    }
  }
}

/** The `pong` for ping `id`, with V8's heap figures. */
function pong(id) {
  const m = process.memoryUsage();
  return { type: 'pong', id, heap_used: m.heapUsed, heap_total: m.heapTotal };
}

module.exports = {
  busy,
  ready,
  emitWorkerEvent,
  onShutdown,
  onHardKill,
  runShutdownHooks,
  runKillHooks,
  pong,
};
