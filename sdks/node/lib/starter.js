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

const state = require('./state');
const { holdable } = require('./lifecycle');

const RESOLVED = Promise.resolve();

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
      this.startOne(job);
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
    // What the jobs that end at once send goes out in one write when the last has run.
    this.worker.channel.cork();
    for (const job of jobs) this.startOne(job);
    this.worker.channel.uncork();
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
