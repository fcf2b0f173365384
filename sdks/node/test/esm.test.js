'use strict';
// ES module job files (.mjs, and .js in a "type": "module" package), and serve(): a worker
// script whose handlers are registered in code.

const assert = require('node:assert/strict');
const { describe, test, after } = require('node:test');
const fs = require('node:fs');
const path = require('node:path');
const { WorkerProcess, tempTree, SDK } = require('./harness');

const root = tempTree({
  'jobs/defaultfn.mjs': `export default function (params, ctx) { return { params, id: ctx.id }; }
export function other(a, b) { return a * b; }`,
  'jobs/named.mjs': `export async function handle(params, ctx) { return { named: params, job: ctx.job }; }
export const pause = (x) => 'paused ' + x;`,
  'jobs/klass.mjs': `let made = 0;
export default class K { constructor(p) { made++; this.p = p; } handle() { return { p: this.p, made }; } peek() { return this.p; } }`,
  'jobs/defaultobj.mjs': `export default { handle(p) { return ['obj', p]; } };`,
  'jobs/tla.mjs': `const v = await new Promise((r) => setTimeout(() => r('awaited'), 5));
export default () => v;`,
  'jobs/sdk.mjs': `import { context, progress, CancelledError } from 'offload-worker';
export default async () => { await null; progress('p'); return [context().id, new CancelledError('c').name]; };`,
  'jobs/throws.mjs': `export default () => { throw new RangeError('esm range'); };`,
  'jobs/nothing.mjs': `export const x = 1;`,
  'jobs/broken.mjs': `export default () => {;`,
  'jobs/modpkg/package.json': JSON.stringify({ type: 'module' }),
  'jobs/modpkg/job.js': `import path from 'node:path'; export default (p) => ({ esm: true, sep: path.sep, p });`,
  'jobs/modpkg/legacy.cjs': `module.exports = () => 'cjs inside a module package';`,
  'serve-worker.js': `
    const { serve } = require(${JSON.stringify(SDK)});
    serve({
      'images/resize': (p, ctx) => ({ resized: p, job: ctx.job }),
      double: { handle: (p) => p * 2 },
      default: class { handle(p) { return ['default', p]; } },
    });`,
  'serve-strict.js': `
    require(${JSON.stringify(SDK)}).serve({ only: () => 1 }, { concurrency: 2 });`,
});
const jobsDir = path.join(root, 'jobs');
after(() => fs.rmSync(root, { recursive: true, force: true }));

const workers = [];
let shared;
function worker() {
  if (!shared) {
    const w = new WorkerProcess({ jobsDir, env: { OFFLOAD_CONCURRENCY: '8' } });
    workers.push(w);
    shared = w.ready().then(() => w);
  }
  return shared;
}
after(() => workers.forEach((w) => w.kill()));

describe('ES module jobs', { concurrency: 4 }, () => {
  test('default function export gets (params, ctx)', async () => {
    const w = await worker();
    assert.deepEqual((await w.run('defaultfn', 3, { id: 'd1' })).value, { params: 3, id: 'd1' });
  });

  test('a named handle export', async () => {
    const w = await worker();
    assert.deepEqual((await w.run('named', 'n')).value, { named: 'n', job: 'named' });
  });

  test('default class: a fresh instance per job; call reaches its methods', async () => {
    const w = await worker();
    const a = await w.run('klass', 'a');
    const b = await w.run('klass', 'b');
    assert.equal(a.value.p, 'a');
    assert.equal(b.value.p, 'b');
    assert.equal(b.value.made, a.value.made + 1);
    w.send({ type: 'call', id: 'kp', job: 'klass', func: 'peek' });
    assert.equal((await w.answer('kp')).value, null, 'no run in progress: a fresh new K()');
  });

  test('call reaches named exports', async () => {
    const w = await worker();
    w.send({ type: 'call', id: 'o', job: 'defaultfn', func: 'other', args: [6, 7] });
    assert.equal((await w.answer('o')).value, 42);
    w.send({ type: 'call', id: 'p', job: 'named', func: 'pause', args: ['x'] });
    assert.equal((await w.answer('p')).value, 'paused x');
  });

  test('export default { handle }, top-level await', async () => {
    const w = await worker();
    assert.deepEqual((await w.run('defaultobj', 1)).value, ['obj', 1]);
    assert.equal((await w.run('tla', null)).value, 'awaited');
  });

  test('.js in a "type": "module" package, and .cjs beside it', async () => {
    const w = await worker();
    assert.deepEqual((await w.run('modpkg/job', 1)).value, { esm: true, sep: path.sep, p: 1 });
    assert.equal((await w.run('modpkg/legacy', null)).value, 'cjs inside a module package');
  });

  test("import { context, progress } from 'offload-worker' without installing it", async () => {
    const w = await worker();
    const r = await w.run('sdk', null, { id: 's1' });
    assert.deepEqual(r.value, ['s1', 'Cancelled']);
    assert.deepEqual(r.seen, [{ type: 'progress', id: 's1', data: 'p' }]);
  });

  test('errors keep their class; no handler is JobNotFound; a syntax error is SyntaxError', async () => {
    const w = await worker();
    const e = (await w.run('throws', null)).error;
    assert.equal(e.name, 'RangeError');
    assert.match(e.stack, /throws\.mjs/);
    const n = (await w.run('nothing', null)).error;
    assert.equal(n.name, 'JobNotFound');
    assert.match(n.message, /ES module with exports \[x\]/);
    assert.equal((await w.run('broken', null)).error.name, 'SyntaxError');
  });
});

describe('serve(): handlers registered in code', { concurrency: 2 }, () => {
  test('exact name, then last segment, then "default"', async () => {
    const w = new WorkerProcess({ script: path.join(root, 'serve-worker.js') });
    workers.push(w);
    const ready = await w.ready();
    assert.equal(ready.concurrency, 1);
    assert.deepEqual((await w.run('images/resize', 5)).value, { resized: 5, job: 'images/resize' });
    assert.equal((await w.run('math/double', 4)).value, 8);
    assert.deepEqual((await w.run('anything', 1)).value, ['default', 1]);
  });

  test('no match and no default is JobNotFound; options.concurrency wins', async () => {
    const w = new WorkerProcess({ script: path.join(root, 'serve-strict.js') });
    workers.push(w);
    assert.equal((await w.ready()).concurrency, 2);
    assert.equal((await w.run('other', null)).error.name, 'JobNotFound');
  });
});
