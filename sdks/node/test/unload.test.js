'use strict';
// A graceful shutdown (the `shutdown` frame, SIGTERM) calls the optional unload() of every job
// module the worker loaded, after the jobs are answered and before the ack; bounded by the grace
// (at least 1 s); errors are logged and still ack + exit 0. A closed channel calls nothing.

const assert = require('node:assert/strict');
const { describe, test, after } = require('node:test');
const fs = require('node:fs');
const path = require('node:path');
const { WorkerProcess, tempTree } = require('./harness');

const JOBS = {
  // unload() appends a line to the marker file named by the run's params.
  'marker.js': `
    const fs = require('node:fs');
    let marker = null;
    module.exports = (p) => { marker = p.marker; return 'ran'; };
    module.exports.unload = () => { if (marker) fs.appendFileSync(marker, 'cjs\\n'); };`,
  'amarker.mjs': `
    import fs from 'node:fs';
    import { setTimeout as sleep } from 'node:timers/promises';
    let marker = null;
    export default (p) => { marker = p.marker; return 'ran'; };
    export async function unload() { await sleep(20); if (marker) fs.appendFileSync(marker, 'esm\\n'); }`,
  'throwing.js': `
    module.exports = () => 'ran';
    module.exports.unload = () => { throw new Error('unload boom'); };`,
  'rejecting.js': `
    module.exports = () => 'ran';
    module.exports.unload = async () => {
      setTimeout(() => { throw new Error('stray throw after unload'); }, 0);
      await new Promise((r) => setTimeout(r, 50));
      throw new RangeError('unload rejected');
    };`,
  'hanging.js': `
    module.exports = () => 'ran';
    module.exports.unload = () => new Promise(() => { setInterval(() => {}, 1000); });`,
  'slow.js': `
    module.exports = (p) => new Promise((r) => setTimeout(() => r(p.ms), p.ms));`,
};

const root = tempTree(Object.fromEntries(Object.entries(JOBS).map(([k, v]) => [`jobs/${k}`, v])));
const jobsDir = path.join(root, 'jobs');
after(() => fs.rmSync(root, { recursive: true, force: true }));

const workers = [];
function start(opts = {}) {
  const w = new WorkerProcess({ jobsDir, ...opts });
  workers.push(w);
  return w;
}
after(() => workers.forEach((w) => w.kill()));

let seq = 0;
function markerFile() {
  return path.join(root, `marker-${process.pid}-${++seq}`);
}

describe('unload() at shutdown', { concurrency: 4 }, () => {
  test('shutdown: every loaded module unloads once (sync and async, CJS and ESM), then ack, exit 0', async () => {
    const w = start();
    await w.ready();
    const marker = markerFile();
    assert.equal((await w.run('marker', { marker })).value, 'ran');
    assert.equal((await w.run('marker', { marker })).value, 'ran');
    assert.equal((await w.run('amarker', { marker })).value, 'ran');
    assert.equal((await w.run('slow', { ms: 1 })).value, 1, 'a module without unload() is fine');
    w.send({ type: 'shutdown', grace_ms: 5000 });
    assert.deepEqual(await w.next(), { type: 'ack', id: 'shutdown' });
    assert.equal((await w.exited()).code, 0);
    assert.deepEqual(fs.readFileSync(marker, 'utf8').split('\n').filter(Boolean).sort(), ['cjs', 'esm']);
    assert.doesNotMatch(w.stderr, /unload/);
  });

  test('unload() runs after the running jobs are answered', async () => {
    const w = start();
    await w.ready();
    const marker = markerFile();
    await w.run('marker', { marker });
    w.send({ type: 'run', id: 's', job: 'slow', params: { ms: 300 } });
    w.send({ type: 'shutdown', grace_ms: 5000 });
    assert.deepEqual(await w.next(), { type: 'result', id: 's', value: 300 });
    assert.deepEqual(await w.next(), { type: 'ack', id: 'shutdown' });
    assert.equal((await w.exited()).code, 0);
    assert.equal(fs.readFileSync(marker, 'utf8'), 'cjs\n');
  });

  test('SIGTERM unloads like shutdown', async () => {
    const w = start();
    await w.ready();
    const marker = markerFile();
    await w.run('marker', { marker });
    w.child.kill('SIGTERM');
    assert.deepEqual(await w.next(), { type: 'ack', id: 'shutdown' });
    assert.equal((await w.exited()).code, 0);
    assert.equal(fs.readFileSync(marker, 'utf8'), 'cjs\n');
  });

  test('a throwing or rejecting unload() is logged; the others still run; ack and exit 0', async () => {
    const w = start();
    await w.ready();
    const marker = markerFile();
    await w.run('throwing', null);
    await w.run('rejecting', null);
    await w.run('marker', { marker });
    w.send({ type: 'shutdown', grace_ms: 5000 });
    assert.deepEqual(await w.next(), { type: 'ack', id: 'shutdown' });
    assert.equal((await w.exited()).code, 0);
    assert.match(w.stderr, /offload worker: unload\(\) of \S+throwing\.js failed: Error: unload boom/);
    assert.match(w.stderr, /offload worker: unload\(\) of \S+rejecting\.js failed: RangeError: unload rejected/);
    assert.match(w.stderr, /stray throw after unload/);
    assert.equal(fs.readFileSync(marker, 'utf8'), 'cjs\n');
  });

  test('a hanging unload() does not keep the worker past the grace (at least 1 s)', async () => {
    const w = start();
    await w.ready();
    const marker = markerFile();
    await w.run('hanging', null);
    await w.run('marker', { marker });
    const t0 = Date.now();
    w.send({ type: 'shutdown', grace_ms: 0 });
    assert.deepEqual(await w.next(4000), { type: 'ack', id: 'shutdown' });
    const took = Date.now() - t0;
    assert.equal((await w.exited()).code, 0);
    assert.ok(took >= 900 && took < 3000, `ack after ${took} ms`);
    assert.equal(fs.readFileSync(marker, 'utf8'), 'cjs\n', 'the other modules were unloaded');
  });

  test('the channel closing (EOF) exits at once without calling unload()', async () => {
    const w = start();
    await w.ready();
    const marker = markerFile();
    await w.run('marker', { marker });
    w.close();
    assert.equal((await w.exited()).code, 0);
    assert.equal(fs.existsSync(marker), false);
  });
});
