'use strict';
// pool.schedule: the periodic-task tutorial's timer, supervised — real runs on a real pool,
// failures counted and pausing the schedule, overlap, bad options refused at once, a graceful
// stop, and the pool's shutdown stopping its schedules. Waits are on events (bounded).
const assert = require('node:assert/strict');
const { describe, test, before, after } = require('node:test');
const { once } = require('node:events');
const { ChildPool, Schedule, InvalidArgumentError } = require('..');
const { JOBS, alive, until } = require('./helpers');

/** The next `event` of `emitter` for which `pred(...args)` holds (bounded). */
function next(emitter, event, pred = () => true, ms = 30000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`no ${event} within ${ms} ms`));
    }, ms);
    function on(...args) {
      if (!pred(...args)) return;
      clearTimeout(timer);
      emitter.off(event, on);
      resolve(args);
    }
    emitter.on(event, on);
  });
}

describe('ChildPool.schedule', () => {
  let pool;
  before(async () => {
    pool = await ChildPool.start({ jobs: JOBS, min: 2, max: 2, retries: 0, cancelGrace: 200, killGrace: 500 });
  });
  after(async () => {
    const pids = pool.pids();
    await pool.shutdown({ deadline: 2000 });
    await until(() => pids.every((p) => !alive(p)), 20000, 'workers gone');
  });

  test('every interval: the job runs in a worker and its results arrive as events', async () => {
    const s = pool.schedule('echo', { n: 3 }, { every: 30 });
    assert.ok(s instanceof Schedule);
    const [value, info] = await next(s, 'succeeded');
    assert.deepEqual(value, { n: 3 });
    assert.equal(typeof info.job, 'number');
    await next(s, 'succeeded');
    const status = await s.stop({ deadline: 5000 });
    assert.ok(status.succeeded >= 2, JSON.stringify(status));
    assert.equal(status.failed, 0);
    assert.equal(status.active, 0);
    assert.equal(status.stopped, true);
  });

  test('failures are counted, the last error kept, and the schedule pauses itself; resume runs again', async () => {
    const s = pool.schedule('throws', null, { every: 20, pauseAfterFailures: 2 });
    const failures = [];
    s.on('failed', (error, info) => failures.push([error, info.consecutiveFailures]));
    const [reason] = await next(s, 'paused');
    assert.equal(reason, '2 consecutive failures');
    assert.deepEqual(failures.map((f) => f[1]), [1, 2]);
    assert.match(failures[0][0], /width must be positive/);
    const st = s.status();
    assert.equal(st.paused, '2 consecutive failures');
    assert.equal(st.consecutiveFailures, 2);
    assert.match(st.lastError, /width must be positive/);
    await next(s, 'skipped', (i) => i.reason === 'paused');
    assert.equal(s.status().runs, 2, 'no run while paused');
    s.resume();
    await next(s, 'resumed');
    await next(s, 'started');
    await s.stop({ deadline: 0 });
  });

  test('overlap "skip" (the default) never runs two at once; "replace" cancels the unfinished run', async () => {
    const skip = pool.schedule('slow', { ms: 300 }, { every: 20 });
    await next(skip, 'skipped', (i) => i.reason === 'overlap');
    assert.ok(skip.status().active <= 1);
    await skip.stop({ deadline: 5000 });

    const replace = pool.schedule('slow', { ms: 60000 }, { every: 100, overlap: 'replace' });
    const [first] = await next(replace, 'started');
    await next(replace, 'cancelled', (i) => i.job === first.job);
    const st = await replace.stop({ deadline: 0 });
    assert.equal(st.failed, 0, 'a run the schedule replaced is not a failure');
  });

  test('a cron expression in a time zone has its next tick; run-now works while paused', async () => {
    const s = pool.schedule('echo', { n: 1 }, { cron: '0 3 * * *', timezone: 'Europe/Berlin' });
    await s.ready;
    assert.ok(s.status().nextAt > Date.now());
    s.pause();
    await next(s, 'paused', (r) => r === 'manual');
    s.runNow();
    const [value] = await next(s, 'succeeded');
    assert.deepEqual(value, { n: 1 });
    const st = await s.stop();
    assert.equal(st.runs, 1);
  });

  test('bad options are refused at once, naming the option', () => {
    const cases = [
      [{}, /exactly one of "every"/],
      [{ every: 10, cron: '* * * * *' }, /exactly one of "every"/],
      [{ every: 0 }, /at least 1 ms/],
      [{ every: -5 }, /"every"/],
      [{ cron: 'every day' }, /every day/],
      [{ cron: '* * * * *', timezone: 'Mars/Olympus' }, /timezone/],
      [{ every: 10, overlap: 'sometimes' }, /overlap/],
      [{ every: 10, pauseAfterFailures: 0 }, /pauseAfterFailures/],
      [{ every: 10, pauseAfterFailures: 5000 }, /pause_after_failures/],
      [{ every: 10, jitter: 7_200_000 }, /jitter/],
      [{ every: 10, backoff: 1000, backoffMax: 10 }, /failure_backoff/],
      [{ every: 10, sometimes: true }, /unknown option "sometimes"/],
    ];
    for (const [opts, message] of cases) {
      assert.throws(() => pool.schedule('echo', null, opts), (e) => e instanceof InvalidArgumentError && message.test(e.message), JSON.stringify(opts));
    }
    assert.throws(() => pool.schedule('../escape', null, { every: 10 }), /escape|leaves|outside|invalid/i);
  });

  test("the pool's shutdown stops its schedules", async () => {
    const other = await ChildPool.start({ jobs: JOBS, min: 1, max: 1 });
    const pids = other.pids();
    const s = other.schedule('echo', null, { every: 20 });
    await next(s, 'succeeded');
    const stopped = once(s, 'stopped');
    await other.shutdown({ deadline: 2000 });
    await stopped;
    const final = s.status();
    assert.equal(final.stopped, true);
    assert.ok(final.succeeded >= 1 && final.active === 0, JSON.stringify(final));
    await until(() => pids.every((p) => !alive(p)), 20000, 'workers gone');
  });
});
