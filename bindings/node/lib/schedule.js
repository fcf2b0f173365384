'use strict';
// Schedule: a periodic job on a ChildPool (offload_schedule::Scheduler), for a program with no
// daemon — the periodic-task tutorial's timer, supervised, with the daemon's guard rails.

const { EventEmitter } = require('node:events');
const native = require('./native');
const { makeError, toJson, fromNative } = require('./errors');
const { positive, duration, checkOptions } = require('./options');
const { hold, keep } = require('./keepalive');

const SCHEDULE_OPTIONS = [
  'name', 'every', 'cron', 'timezone', 'overlap', 'pauseAfterFailures', 'backoff', 'backoffMax',
  'jitter', 'immediately', 'timeout',
];

/** Events: 'started' ({tick, job}), 'succeeded' (value, {job}), 'failed' (error message,
 * {job, consecutiveFailures}), 'skipped' ({tick, reason}), 'cancelled', 'paused' (reason),
 * 'resumed', 'stopped'. While it runs, it keeps Node's event loop alive, as a timer would. */
class Schedule extends EventEmitter {
  constructor(pool, job, params, opts = {}) {
    super();
    checkOptions('schedule', opts, SCHEDULE_OPTIONS);
    if ((opts.every === undefined) === (opts.cron === undefined)) {
      throw makeError('InvalidArgument', 'schedule: give exactly one of "every" (ms) and "cron" (an expression)');
    }
    if (opts.every !== undefined && duration('every', opts.every) < 1) {
      throw makeError('InvalidArgument', 'option "every" must be at least 1 ms');
    }
    if (opts.cron !== undefined && typeof opts.cron !== 'string') {
      throw makeError('InvalidArgument', `option "cron" must be a string, got ${JSON.stringify(opts.cron)}`);
    }
    this.job = pool._jobName(job);
    this.spec = {
      name: opts.name === undefined ? this.job : String(opts.name),
      job: this.job,
      params: JSON.parse(toJson(params === undefined ? null : params, this.job)),
      everyMs: duration('every', opts.every),
      cron: opts.cron,
      timezone: opts.timezone,
      overlap: opts.overlap,
      pauseAfterFailures: positive('pauseAfterFailures', opts.pauseAfterFailures),
      backoffMs: duration('backoff', opts.backoff),
      backoffMaxMs: duration('backoffMax', opts.backoffMax),
      jitterMs: duration('jitter', opts.jitter),
      immediately: Boolean(opts.immediately),
      timeoutMs: duration('timeout', opts.timeout),
    };
    try {
      native.checkSchedule(JSON.stringify(this.spec));
    } catch (e) {
      throw fromNative(e);
    }
    this.native = null;
    this.stopped = null;
    this.final = null;
    this.queued = [];
    this.release = hold();
    /** Resolves once the schedule runs; rejects (InvalidArgument, StartFailed) otherwise. */
    this.ready = pool.ready.then((p) => {
      try {
        this.native = native.startSchedule(p.native, JSON.stringify(this.spec), (json) => this._onNative(json));
      } catch (e) {
        throw fromNative(e);
      }
      for (const op of this.queued.splice(0)) this.native[op]();
      return this;
    });
    this.ready.catch(() => this.release());
  }

  _onNative(json) {
    let ev;
    try {
      ev = JSON.parse(json);
    } catch {
      return;
    }
    switch (ev.event) {
      case 'started': this.emit('started', { tick: ev.tick, job: ev.job }); break;
      case 'succeeded': this.emit('succeeded', ev.value, { job: ev.job }); break;
      case 'failed':
        this.emit('failed', ev.error, { job: ev.job, consecutiveFailures: ev.consecutive_failures });
        break;
      case 'skipped': this.emit('skipped', { tick: ev.tick, reason: ev.reason }); break;
      case 'cancelled': this.emit('cancelled', { job: ev.job }); break;
      case 'paused': this.emit('paused', ev.reason); break;
      case 'resumed': this.emit('resumed'); break;
      case 'stopped':
        this.release();
        this.emit('stopped');
        break;
      default: break;
    }
  }

  _op(name) {
    if (this.native) this.native[name]();
    else this.queued.push(name);
  }

  /** Ticks fire nothing until resume(); unfinished runs go on. */
  pause() { this._op('pause'); }

  /** Resumes; its consecutive failures start again from zero. */
  resume() { this._op('resume'); }

  /** Starts one run now, whatever overlap, backoff or a pause say. */
  runNow() { this._op('runNow'); }

  /** Counters: runs, succeeded, failed, skipped, consecutiveFailures, lastSuccessAt,
   * lastFailureAt, lastError, paused (the reason, or null), active, nextAt (ms since epoch). */
  status() {
    if (this.final) return this.final;
    if (!this.native) return { runs: 0, succeeded: 0, failed: 0, skipped: 0, consecutiveFailures: 0, active: 0, paused: null, nextAt: null, stopped: false };
    return camel(JSON.parse(this.native.status()));
  }

  /** Stops: no more ticks; unfinished runs may finish within `deadline` ms, then are
   * cancelled. Resolves to the final counters. */
  async stop({ deadline = 5000 } = {}) {
    if (!this.stopped) {
      const ms = duration('deadline', deadline);
      this.stopped = keep(this.ready.then((s) => s.native.stop(ms)).then((json) => {
        this.final = camel(JSON.parse(json));
        return this.final;
      }));
      this.stopped.finally(() => this.release()).catch(() => {});
    }
    return this.stopped;
  }
}

function camel(status) {
  return {
    runs: status.runs,
    succeeded: status.succeeded,
    failed: status.failed,
    skipped: status.skipped,
    consecutiveFailures: status.consecutive_failures,
    lastSuccessAt: status.last_success_at ?? null,
    lastFailureAt: status.last_failure_at ?? null,
    lastError: status.last_error ?? null,
    paused: status.paused ?? null,
    active: status.active,
    nextAt: status.next_at ?? null,
    stopped: Boolean(status.stopped),
  };
}

module.exports = { Schedule };
