'use strict';
// offload-worker: the Node.js worker SDK of offload. Job files need nothing from here (they get
// `ctx` as an argument); this module adds the same things for code that has no `ctx` at hand,
// supervisor broadcast events, error classes, and serve() for a worker with in-code handlers.

const state = require('./lib/state');
const errors = require('./lib/errors');
const { HandlerJobs, FileJobs } = require('./lib/jobs');
const { Worker, JobContext, ConfigError, readConfig, writeStderr, PROTOCOL, CAPABILITIES } = require('./lib/worker');
const { installCjsFallbacks } = require('./lib/hooks');
const control = require('./lib/control');

/** The context of the job whose code is running (through awaits, timers, callbacks), or
 * undefined outside a job. */
function context() {
  const ctx = state.als.getStore();
  return ctx instanceof JobContext || (ctx && typeof ctx.progress === 'function') ? ctx : undefined;
}

function requireContext(what) {
  const ctx = context();
  if (!ctx) throw new Error(`offload-worker: ${what}() called outside a running job`);
  return ctx;
}

/** ctx.progress() of the current job. */
function progress(data) {
  requireContext('progress').progress(data);
}

/** ctx.emit() of the current job. */
function emit(name, data, receiver = 'all') {
  requireContext('emit').emit(name, data, receiver);
}

/** Listen to broadcast events from the supervisor ({"type":"event"}). A listener may return a
 * promise: an event with an id is acknowledged once every listener has settled. */
function onEvent(name, listener) {
  state.events.on(name, listener);
  return () => state.events.off(name, listener);
}

function offEvent(name, listener) {
  state.events.off(name, listener);
}

/**
 * Run this process as a worker with handlers registered in code instead of job files:
 *   serve({ resize: async (params, ctx) => ..., 'images/thumb': ThumbJob })
 * A handler is a class, a function or an object with handle(), as in job files. The job name of
 * a run is looked up exactly, then by its last segment, then as "default". Reads the same
 * environment as the runner; exits with status 2 on a bad environment.
 */
function serve(handlers, options = {}) {
  let config;
  try {
    config = readConfig(options.env || process.env);
    installCjsFallbacks();
    return new Worker({
      jobs: new HandlerJobs(handlers),
      concurrency: options.concurrency || config.concurrency,
      maxFrame: config.maxFrame,
    }).start();
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    writeStderr(`offload worker: ${e.message}\n`);
    process.exit(2);
  }
  return undefined;
}

/** Whether the current process is running as an offload worker. */
function isWorker() {
  return state.worker !== null;
}

module.exports = {
  context,
  progress,
  emit,
  onEvent,
  offEvent,
  serve,
  isWorker,
  busy: control.busy,
  ready: control.ready,
  emitWorkerEvent: control.emitWorkerEvent,
  onShutdown: control.onShutdown,
  softKill: control.onShutdown,
  onHardKill: control.onHardKill,
  hardKill: control.onHardKill,
  JobContext,
  FileJobs,
  PROTOCOL,
  CAPABILITIES,
  OffloadError: errors.OffloadError,
  JobNotFoundError: errors.JobNotFoundError,
  CancelledError: errors.CancelledError,
  DeadlineExceededError: errors.DeadlineExceededError,
  ShuttingDownError: errors.ShuttingDownError,
  FrameTooLargeError: errors.FrameTooLargeError,
  NoSuchFunctionError: errors.NoSuchFunctionError,
  BusyError: errors.BusyError,
  NonRetryableError: errors.NonRetryableError,
  serializeError: errors.serializeError,
};
