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
  // Keeps the thread until the file p.file exists (at most 20 s: then 'gave up').
  'gate.js': `
    const fs = require('node:fs');
    module.exports = (p) => {
      const until = Date.now() + 20000;
      while (!fs.existsSync(p.file)) if (Date.now() > until) return 'gave up';
      return 'opened';
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

    // lib/starter.js, HOLD_MS: the answers of a read's jobs are written together only while the
    // jobs are short. Each case would hang without it: the file that ends the second job is made
    // only once the first job's answer has arrived.
    test('the answer of a job is not held behind a job of the same read that ran long lately', async () => {
      const w = start({ ...env, OFFLOAD_CONCURRENCY: '2' });
      await w.ready();
      const file = path.join(root, `gate-${w.child.pid}`);
      // Both files loaded (a job's first run waits for its file to load), then gate's run long.
      assert.equal((await w.run('echo', 0)).value, 0);
      assert.equal((await w.run('gate', { file: __filename })).value, 'opened');
      w.send({ type: 'run', id: 'long', job: 'gate', params: { file } });
      await sleep(50);
      fs.writeFileSync(file, '');
      assert.equal((await w.answer('long')).value, 'opened');
      // Quick runs since (fewer than SLOW_MEMORY): a long run is recent enough to count.
      for (let i = 0; i < 5; i++) assert.equal((await w.run('gate', { file: __filename })).value, 'opened');
      fs.rmSync(file);
      w.sendRaw(`${JSON.stringify({ type: 'run', id: 'quick', job: 'echo', params: 1 })}\n${JSON.stringify({ type: 'run', id: 'held', job: 'gate', params: { file } })}\n`);
      assert.equal((await w.answer('quick')).value, 1);
      fs.writeFileSync(file, '');
      assert.equal((await w.answer('held')).value, 'opened');
    });

    test('the answer of a job that ran long goes out before the next job of its read starts', async () => {
      const w = start({ ...env, OFFLOAD_CONCURRENCY: '2' });
      await w.ready();
      const [a, b] = ['a', 'b'].map((k) => path.join(root, `gate-${w.child.pid}-${k}`));
      fs.writeFileSync(a, '');
      assert.equal((await w.run('gate', { file: a })).value, 'opened'); // loaded, and quick
      fs.rmSync(a);
      w.sendRaw(`${JSON.stringify({ type: 'run', id: 'first', job: 'gate', params: { file: a } })}\n${JSON.stringify({ type: 'run', id: 'second', job: 'gate', params: { file: b } })}\n`);
      await sleep(50);
      fs.writeFileSync(a, '');
      assert.equal((await w.answer('first')).value, 'opened');
      fs.writeFileSync(b, '');
      assert.equal((await w.answer('second')).value, 'opened');
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
