'use strict';
// The channel below process.send (lib/channel.js): frames of a tick in one write, the size of a
// received frame bounded by the bytes read, and the fallback to process.send when Node's
// internals are not used (--pending-deprecation): the same frames, in the same order, either way.

const { describe, test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { WorkerProcess, tempTree } = require('./harness');

const JOBS = {
  'echo.js': 'module.exports = (p) => p;',
  'slow.js': `
    module.exports = async (p, ctx) => {
      ctx.progress('started');
      await new Promise((r) => setTimeout(r, 20));
      return 'done';
    };`,
  'steps.js': `
    module.exports = async (p, ctx) => {
      for (let i = 0; i < p.n; i++) ctx.progress(i);
      ctx.emit('last', p.n);
      return p.n;
    };`,
};

const root = tempTree(Object.fromEntries(Object.entries(JOBS).map(([k, v]) => [`jobs/${k}`, v])));
const jobsDir = path.join(root, 'jobs');
after(() => fs.rmSync(root, { recursive: true, force: true }));

const workers = [];
function start(env = {}) {
  const w = new WorkerProcess({ jobsDir, env });
  workers.push(w);
  return w;
}
after(() => workers.forEach((w) => w.kill()));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A `run` frame of the echo job of exactly `bytes` bytes. */
function runLine(id, bytes) {
  const base = JSON.stringify({ type: 'run', id, job: 'echo', params: { pad: '' } });
  return JSON.stringify({ type: 'run', id, job: 'echo', params: { pad: 'x'.repeat(bytes - base.length) } });
}

const MODES = [
  ['the pipe, one write per tick', {}, /channel: frames of a tick in one write/],
  ['process.send per frame (--pending-deprecation)', { NODE_OPTIONS: '--pending-deprecation' }, /channel: process\.send per frame/],
];

for (const [mode, env, announced] of MODES) {
  describe(mode, { concurrency: 4 }, () => {
    test('the worker says which way it writes, and prints no deprecation warning', async () => {
      const w = start({ ...env, NODE_DEBUG: 'offload' });
      await w.ready();
      assert.equal((await w.run('echo', { a: 1 })).value.a, 1);
      await w.output('stderr', announced);
      assert.doesNotMatch(w.stderr, /DeprecationWarning/);
    });

    test('64 runs in one read: every answer, each after its own progress and event', async () => {
      const w = start({ ...env, OFFLOAD_CONCURRENCY: '64' });
      await w.ready();
      let text = '';
      for (let i = 0; i < 64; i++) text += `${JSON.stringify({ type: 'run', id: `s${i}`, job: 'steps', params: { n: i % 5 } })}\n`;
      w.sendRaw(text);
      for (let i = 0; i < 64; i++) {
        const r = await w.answer(`s${i}`);
        const n = i % 5;
        assert.equal(r.value, n);
        assert.deepEqual(
          r.seen.map((f) => (f.type === 'progress' ? f.data : f.name)),
          [...Array.from({ length: n }, (_, k) => k), 'last'],
        );
      }
    });

    test('frames within the limit in a read larger than the limit are all run', async () => {
      const w = start({ ...env, OFFLOAD_MAX_FRAME: '4096', OFFLOAD_CONCURRENCY: '32' });
      await w.ready();
      let text = '';
      for (let i = 0; i < 20; i++) text += `${runLine(`b${i}`, 4096)}\n`; // 80 KiB in one write
      w.sendRaw(text);
      for (let i = 0; i < 20; i++) assert.equal((await w.answer(`b${i}`)).type, 'result');
    });

    test('a frame over the limit that arrives in pieces smaller than the limit is refused', async () => {
      const w = start({ ...env, OFFLOAD_MAX_FRAME: '4096' });
      await w.ready();
      const line = `${runLine('big', 6000)}\n`;
      for (let i = 0; i < line.length; i += 1500) {
        w.sendRaw(line.slice(i, i + 1500)); // separate reads: no one of them holds 4096 bytes
        await sleep(30);
      }
      assert.equal((await w.exited()).code, 2);
      assert.match(w.stderr, /protocol error: a \d+-byte frame exceeds OFFLOAD_MAX_FRAME \(4096 bytes\)/);
      assert.equal(w.frames.filter((f) => f.id === 'big').length, 0);
    });

    test('a loaded job whose run ends in the read that brings its cancel never starts', async () => {
      const w = start(env);
      await w.ready();
      assert.equal((await w.run('slow', null, { id: 'warm' })).value, 'done'); // loaded now
      const run = JSON.stringify({ type: 'run', id: 'split', job: 'slow', params: null });
      w.sendRaw(run.slice(0, 20)); // a read with no complete line
      await sleep(30);
      w.sendRaw(`${run.slice(20)}\n${JSON.stringify({ type: 'cancel', id: 'split' })}\n`);
      const r = await w.answer('split');
      assert.equal(r.error.name, 'Cancelled');
      assert.deepEqual(r.seen, []);
      // Alone at the end of its read, it runs.
      assert.equal((await w.run('slow', null, { id: 'alone' })).value, 'done');
    });

    test('a frame exactly at the limit is run', async () => {
      const w = start({ ...env, OFFLOAD_MAX_FRAME: '4096' });
      await w.ready();
      w.sendRaw(`${runLine('edge', 4096)}\n`);
      assert.equal((await w.answer('edge')).type, 'result');
    });
  });
}
