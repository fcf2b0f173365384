'use strict';
// Starting a job's code: with its definition (loaded already, or loaded now), only once every
// frame of the read that brought it was dispatched, in the job's async context; its outcome goes
// to `worker.finish()`.
//
// A job whose file is loaded already starts without awaiting its definition
// (`jobs.settled()`): at once when its frame was the only one of its read (the channel knows,
// `worker.endOfRead`), else queued and started with the others of the read in one microtask,
// corked into one write. Either way after the whole read was dispatched, as the `await` of the
// definition guaranteed before: a cancel in the same read still stops the job before its code
// runs. Other jobs await their definition (the first run of a file loads it).
//
// The write of a read's answers is held only while the jobs are short: what is queued goes out
// before the next job starts once it has waited `HOLD_MS`, or when that job's definition kept
// the thread that long in one of its last `SLOW_MEMORY` runs (`JobDefinition.slow`). Else the
// answer of a job that came in the same read as a long one waited for the other's run: a fast
// job's answer for a slow one's whole run, and with 1 ms jobs two at a time, the supervisor,
// answered two at a time, sent the next two at a time and the worker idled a round trip every
// other job.

const state = require('./state');
const { holdable } = require('./lifecycle');

const RESOLVED = Promise.resolve();

/** How long the answers of the jobs of one read may wait for the read's other jobs, in ms. */
const HOLD_MS = 0.05;

/** For how many runs a definition counts as slow after a run that took HOLD_MS or more (a job
 * whose runs alternate quick and slow is still slow before its next slow run). */
const SLOW_MEMORY = 8;

/** The definition's slowness after a run that took `ms`. */
function ran(def, ms) {
  if (ms >= HOLD_MS) def.slow = SLOW_MEMORY;
  else if (def.slow > 0) def.slow -= 1;
}

class Starter {
  constructor(worker) {
    this.worker = worker;
    this.queued = []; // jobs whose definition is loaded, started in the next microtask
    this.startQueued = this.startQueued.bind(this);
  }

  /** Start `job` (its `ctx` is set). */
  begin(job) {
    const w = this.worker;
    const def = w.jobs.settled ? w.jobs.settled(job.name, job.path) : null;
    if (def === null) {
      state.als
        .run(job.ctx, () => this.execute(job))
        .then(
          (value) => w.finish(job, true, value),
          (err) => w.finish(job, false, err),
        );
      return;
    }
    job.def = def;
    if (w.endOfRead && this.queued.length === 0) {
      w.channel.cork();
      const began = performance.now();
      this.startOne(job);
      ran(def, performance.now() - began);
      w.channel.uncork();
    } else {
      this.queued.push(job);
      if (w.endOfRead) this.startQueued();
      else if (this.queued.length === 1) RESOLVED.then(this.startQueued);
    }
  }

  async execute(job) {
    return invoke(job, await this.worker.jobs.resolve(job.name, job.path));
  }

  /** Start the queued jobs. */
  startQueued() {
    const jobs = this.queued;
    if (jobs.length === 0) return; // started already, at the end of their read
    this.queued = [];
    // What the jobs that end at once send goes out in one write when the last has run, or
    // earlier (HOLD_MS, above).
    const channel = this.worker.channel;
    channel.cork();
    let now = performance.now();
    let flushed = now;
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i];
      if (i > 0 && channel.frames > 0 && (job.def.slow > 0 || now - flushed >= HOLD_MS)) {
        channel.drain();
        flushed = now;
      }
      this.startOne(job);
      const end = performance.now();
      ran(job.def, end - now);
      now = end;
    }
    channel.uncork();
  }

  startOne(job) {
    try {
      this.startNow(job);
    } catch (e) {
      // As from the promise chain it replaces: an unhandled rejection (onUncaught).
      Promise.reject(e);
    }
  }

  startNow(job) {
    const w = this.worker;
    let value;
    try {
      value = state.als.run(job.ctx, invoke, job, job.def);
      if (!isThenable(value)) {
        w.finish(job, true, value);
        return;
      }
    } catch (err) {
      w.finish(job, false, err);
      return;
    }
    Promise.resolve(value).then(
      (v) => w.finish(job, true, v),
      (err) => w.finish(job, false, err),
    );
  }
}

function isThenable(v) {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function';
}

/** Run `job` with its definition (in the job's async context). */
function invoke(job, def) {
  if (job.aborted) throw job.signal.reason;
  if (job.kind === 'run' && holdable()) {
    // A held run keeps its class instance reachable by `call` until it is answered.
    job.holdable = true;
    const released = new Promise((resolve) => (job.releaseInstance = resolve));
    Object.defineProperty(job.ctx, 'heldUntil', { value: released, configurable: true });
  }
  if (job.kind === 'call') return def.call(job.func, job.args, job.ctx);
  return def.run(job.params, job.args, job.ctx);
}

module.exports = { Starter };
