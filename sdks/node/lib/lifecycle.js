'use strict';
// ee-core's ChildJob lifecycle: a job run in its own process (a ChildJob, not a pool worker)
// lives until it calls exit() (ee-core/ps, ee-core/message), its process ends, or it is
// killed. Returning from handle() does not end it: ee-core's demo timer job returns at once
// and keeps sending progress from an interval.
//
// Which runs are held: a `run` whose handle() resolved to `undefined` (returned nothing, as
// ee-core's jobs do; a job returning a value is answered at once), in a worker that is not a pool worker
// (OFFLOAD_POOL unset, no {"type":"childPoolJob"} argument), after the job's module required
// ee-core (`ee-core/*`, real or this SDK's stand-ins). Everything else is answered when
// handle() settles, as before.
//
// How a held run ends:
//   - exit(0) / exit(): answered with handle()'s return value (ee-core's jobs return nothing:
//     null), then the process exits; exit(n) with n != 0: an `Exited` error;
//   - the event loop drains (no timer, socket or child keeps the job alive; the channel is
//     unref'd while a run is held): answered with handle()'s value, then the process exits 0;
//   - cancel, or its deadline passes (the supervisor's timeout): answered Cancelled /
//     DeadlineExceeded at once; the supervisor kills the group after its grace;
//   - handle() threw or rejected: never held, the error is answered at once.

const state = require('./state');

/** Whether this worker runs ee-core ChildJob-style jobs (checked when a run starts). */
function holdable() {
  if (!state.eeCore) return false;
  if (process.env.OFFLOAD_POOL === '1') return false;
  try {
    const arg = JSON.parse(process.argv[2]);
    if (arg && arg.type === 'childPoolJob') return false;
  } catch {
    // not ee-core's argument
  }
  return true;
}

class Holder {
  constructor(worker) {
    this.worker = worker;
    this.held = new Set();
    process.on('beforeExit', () => this.drain());
  }

  /** A run whose handle() returned `value`: true when it is held instead of answered. */
  hold(job, value) {
    if (job.kind !== 'run' || !job.holdable || job.holdReleased || this.worker.exiting || job.aborted) return false;
    // ee-core's handle() returns nothing (ee-core drops the value anyway); a job that returns a
    // value has answered, and is answered at once.
    if (value !== undefined) return false;
    job.held = true;
    job.heldValue = value;
    this.held.add(job);
    job.signal.addEventListener(
      'abort',
      () => {
        if (!this.held.has(job)) return;
        this.release(job);
        this.worker.finish(job, false, job.signal.reason);
      },
      { once: true },
    );
    // The channel alone must not keep the process alive: when nothing else does, the job is done.
    if (process.channel && typeof process.channel.unref === 'function') process.channel.unref();
    return true;
  }

  /** The run is about to be answered: it is no longer held and may not be held again. */
  release(job) {
    job.holdReleased = true;
    if (this.held.delete(job)) job.held = false;
  }

  /** The value a held run is answered with when it ends by exit() (null when not held). */
  valueOf(job) {
    return job.held ? job.heldValue : null;
  }

  /** The event loop drained: answer every held run with its value. */
  drain() {
    for (const job of [...this.held]) {
      const value = job.heldValue;
      this.release(job);
      this.worker.finish(job, true, value);
    }
  }
}

module.exports = { Holder, holdable };
