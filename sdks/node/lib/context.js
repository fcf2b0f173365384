'use strict';
// One job in flight (`Job`: its signal, deadline timer and answer state) and what its code sees
// of it (`JobContext`: progress, events, cancellation, a prefixed log), plus the small helpers
// the worker shares with them.

const util = require('node:util');
const { MAX_TIMER_MS, writeStderr } = require('./settings');
const { asOutput } = require('./streams');

function preview(v) {
  let s;
  try {
    s = JSON.stringify(v);
  } catch {
    s = String(v);
  }
  if (s === undefined) s = String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function truncate(s, max) {
  return typeof s === 'string' && s.length > max ? `${s.slice(0, max)}… (truncated)` : s;
}

function normalizeReceiver(receiver) {
  switch (receiver) {
    case undefined:
    case null:
    case 'all':
      return 'all';
    case 'job':
    case 'childJob':
      return 'job';
    case 'task':
    case 'forkProcess':
      return 'task';
    default:
      throw new TypeError(`event receiver must be "job", "task" or "all", got ${preview(receiver)}`);
  }
}

/** Schedule `fn` at epoch milliseconds `at` (setTimeout alone overflows past ~24.8 days). */
function timerAt(at, fn) {
  const handle = { t: null };
  const arm = () => {
    const delay = at - Date.now();
    if (delay <= 0) return fn();
    handle.t = setTimeout(arm, Math.min(delay, MAX_TIMER_MS));
  };
  arm();
  return handle;
}

// ---------------------------------------------------------------------------------------------

/** One `run` or `call` in flight. */
class Job {
  constructor(kind, fields) {
    this.kind = kind;
    this.id = fields.id;
    this.name = fields.job;
    this.path = fields.path;
    this.params = fields.params;
    this.args = fields.args;
    this.func = fields.func;
    this.deadline = fields.deadline;
    this.controller = null; // created on first use: most jobs never look at their signal
    this.answered = false;
    this.deadlineTimer = null;
    this.ctx = null;
    // Set by the worker on most jobs: declared, so that they are not added to each job later.
    // (The rare ones — handles, streams, ee-core's hold — are added when used: declaring them
    // made every job larger, 4.25 -> 4.45 µs per task in 7 of 10 pairs.)
    this.def = null; // the loaded definition, when the job starts without awaiting it
  }

  get signal() {
    if (this.controller === null) this.controller = new AbortController();
    return this.controller.signal;
  }

  get aborted() {
    return this.controller !== null && this.controller.signal.aborted;
  }

  abort(reason) {
    if (!this.signal.aborted) this.controller.abort(reason);
  }

  dispose() {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer.t);
    this.deadlineTimer = null;
  }
}

const JOB = Symbol('offload.job');
const WORKER = Symbol('offload.worker');

/**
 * What a job gets as its second argument (and from `context()` anywhere in its async flow).
 */
class JobContext {
  constructor(worker, job) {
    this[WORKER] = worker;
    this[JOB] = job;
    this._log = null;
  }

  /** The job's id on the channel. */
  get id() {
    return this[JOB].id;
  }
  /** The job's name (relative to the jobs folder, without extension). */
  get job() {
    return this[JOB].name;
  }
  /** The job's input. */
  get params() {
    return this[JOB].params;
  }
  /** ee-core's positional arguments (jobParams / a call's args), or null. */
  get args() {
    return this[JOB].args;
  }
  /** "run" or "call". */
  get kind() {
    return this[JOB].kind;
  }
  /** For a call: the function's name. */
  get func() {
    return this[JOB].func === undefined ? null : this[JOB].func;
  }
  /** The soft deadline (Unix epoch ms) or null. */
  get deadline() {
    return this[JOB].deadline;
  }
  /** Aborted on cancel (reason: CancelledError), when the deadline passes (DeadlineExceededError)
   * and when a shutdown's grace period ends (CancelledError). */
  get signal() {
    return this[JOB].signal;
  }
  /** The descriptors passed with this run (docs/protocol.md §9), in order: net.Socket,
   * net.Server or dgram.Socket. Reading this makes them the job's (it closes them when done);
   * a job that never reads it has them closed when it is answered. */
  get fds() {
    const job = this[JOB];
    if (!job.handles) return [];
    job.handlesTaken = true;
    return job.handles;
  }
  /** The job's input stream (docs/protocol.md §10; the host's `run_with_streams`): a
   * net.Socket to read to its end, or null. It is closed when the job is answered. */
  get inputStream() {
    const s = this[JOB].streams;
    return s && s.input ? s.input : null;
  }
  /** The job's output stream: a net.Socket (Writable) the host reads, or null. Honour
   * backpressure (`write()` false → wait for 'drain'); a write that waits for the run's stall
   * limit destroys it with a `StreamStalled` error naming the limit, a reader gone is a
   * `StreamClosed` error. It is ended when the job is answered. */
  get outputStream() {
    const s = this[JOB].streams;
    if (!s || !s.output) return null;
    if (!s.outputReady) {
      s.outputReady = true;
      asOutput(s.output, s.stallMs);
    }
    return s.output;
  }
  /** Whether the signal was aborted (cancel, deadline or shutdown). */
  get cancelled() {
    return this[JOB].aborted;
  }
  /** Whether the job still runs (false once its answer was sent). */
  get active() {
    return !this[JOB].answered;
  }

  /** Report progress (any JSON value). Frames are sent in order. */
  progress(data) {
    this[WORKER].sendProgress(this[JOB], data);
  }

  /**
   * Resolves once at most 1 MiB (`SEND_HIGH_WATER`) of this worker's frames waits to be written
   * to the supervisor; at once when that is so already. `progress()` and `emit()` only queue:
   * a job that sends faster than the application takes its events (the host holds a worker's
   * channel while its listeners are behind) would grow this process without bound. Awaiting
   * `sent()` after each frame, or every few, paces the job to its reader instead.
   */
  sent() {
    return this[WORKER].sent();
  }

  /** Emit a named event for the application; receiver "job", "task" or "all" (default). */
  emit(name, data, receiver = 'all') {
    this[WORKER].sendEvent(name, data, normalizeReceiver(receiver), this[JOB]);
  }

  /**
   * Fail the job now: throws `err` (an Error, or a message). With `{ retry: false }` the job
   * goes straight to dead, whatever attempts it has left: `ctx.fail(err, { retry: false })`.
   */
  fail(err, options = {}) {
    const e = err instanceof Error ? err : new Error(String(err));
    if (options.retry === false) e.retry = false;
    throw e;
  }

  /** Throw the signal's reason if the job was cancelled or its deadline passed. */
  throwIfCancelled() {
    if (this[JOB].aborted) throw this[JOB].signal.reason;
  }

  /** log(...args) and log.info/warn/error/debug: lines on stderr prefixed with the job. */
  get log() {
    if (!this._log) {
      const job = this[JOB];
      const prefix = `[${job.name || job.kind} ${job.id}]`;
      const write = (level, args) => writeStderr(`${prefix}${level} ${util.format(...args)}\n`);
      const log = (...args) => write('', args);
      log.info = (...args) => write(' INFO', args);
      log.warn = (...args) => write(' WARN', args);
      log.error = (...args) => write(' ERROR', args);
      log.debug = (...args) => write(' DEBUG', args);
      this._log = log;
    }
    return this._log;
  }

  toJSON() {
    return { id: this.id, job: this.job, kind: this.kind, deadline: this.deadline, cancelled: this.cancelled };
  }
}


module.exports = { Job, JobContext, JOB, preview, truncate, normalizeReceiver, timerAt };
