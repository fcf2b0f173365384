'use strict';
// Backpressure: a worker's events are read only as fast as JavaScript takes them, so none is
// lost and the host's memory stays bounded; timeouts and kills still end a flooding job.
const assert = require('node:assert/strict');
const { describe, test, before, after } = require('node:test');
const offload = require('..');
const eecore = require('../ee-core');
const { JOBS, APP, alive, until } = require('./helpers');

/** Busy-waits `us` microseconds: a listener slower than the worker. */
function busy(us) {
  const end = process.hrtime.bigint() + BigInt(us) * 1000n;
  while (process.hrtime.bigint() < end);
}

describe('backpressure', () => {
  let pool;
  let jobs;
  before(async () => {
    pool = await offload.ChildPool.start({ jobs: JOBS, min: 1, max: 1, retries: 0, cancelGrace: 200, killGrace: 500 });
    jobs = new offload.ChildJob({ jobs: JOBS });
  });
  after(async () => {
    const pids = pool.pids();
    await pool.shutdown({ deadline: 2000 });
    await jobs.killAll();
    await until(() => pids.every((p) => !alive(p)), 20000, 'workers gone');
  });

  test('a slow listener gets every event of a large flood, and the host does not buffer the flood', async () => {
    // 20,000 events of 8 KiB (160 MiB) to a listener that spends 20 µs on each: without
    // backpressure they would pile up in the host (or be dropped).
    const n = 20000;
    const task = pool.submit('flood', { n, bytes: 8192 });
    const base = process.memoryUsage().rss;
    let peak = base;
    let next = 0;
    let outOfOrder = 0;
    let lost = 0;
    task.on('event', (name, data) => {
      if (data.i !== next) outOfOrder += 1;
      next = data.i + 1;
      busy(20);
      if (next % 500 === 0) peak = Math.max(peak, process.memoryUsage().rss);
    });
    task.on('lost', (k) => (lost += k));
    assert.equal(await task.result, n);
    assert.equal(lost, 0);
    assert.equal(next, n, 'every event arrived');
    assert.equal(outOfOrder, 0);
    // At most 128 events of a worker wait for JavaScript (1 MiB here); the rest of the bound
    // is V8's garbage between collections.
    const grown = (peak - base) / 2 ** 20;
    if (process.env.OFFLOAD_TEST_VERBOSE) console.log(`grew ${grown.toFixed(1)} MiB`);
    assert.ok(grown < 100, `the host grew by ${grown.toFixed(1)} MiB for a 160 MiB flood`);
  });

  test("a flooding job's timeout still fires while its events wait for a slow listener", async () => {
    const task = pool.submit('flood', { n: null, bytes: 256 }, { timeout: 300 });
    let got = 0;
    task.on('event', () => {
      got += 1;
      busy(200);
    });
    await assert.rejects(task.result, (e) => e instanceof offload.TimedOutError);
    assert.ok(got > 0);
    // The worker was replaced or kept; the pool still runs jobs.
    assert.deepEqual(await pool.run('echo', { n: 1 }), { n: 1 });
  });

  test('a ChildJob run that floods can be killed while its listener is behind', async () => {
    const run = jobs.start('flood', { n: null, bytes: 256 });
    let got = 0;
    run.on('event', () => {
      got += 1;
      busy(200);
    });
    await until(() => got > 100, 20000, 'events flowing');
    run.kill();
    await assert.rejects(run.result, (e) => e.code === 'Killed');
    assert.ok(!alive(run.pid));
  });

  test("ee-core: every childMessage.send of a burst reaches the JobProcess's emitter before its exit", async () => {
    const job = new eecore.ChildJob({ baseDir: APP });
    const count = 5000;
    const proc = job.exec('./jobs/chatty', { jobId: 'b1', count });
    const seen = [];
    proc.emitter.on('chat-b1', (data) => seen.push(data.i));
    await new Promise((resolve) => proc.emitter.once('exit', resolve));
    assert.equal(seen.length, count);
    assert.ok(seen.every((v, i) => v === i));
  });
});
