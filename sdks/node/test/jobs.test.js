'use strict';
// The job loader in-process: name checks, shape detection, and hot reload (unload() then
// eviction), through the runner's exported reload().

const assert = require('node:assert/strict');
const { describe, test, after } = require('node:test');
const fs = require('node:fs');
const path = require('node:path');
const { tempTree, writeTree, RUNNER } = require('./harness');
const { FileJobs, invalidName, isClass, pickTarget, findFunction, JobDefinition } = require('../lib/jobs');

const root = tempTree({
  'jobs/counter.js': `
    const helper = require('./lib/helper');
    let n = 0;
    module.exports = () => ({ n: ++n, helper: helper.version });
    module.exports.unload = async () => {
      await new Promise((r) => setTimeout(r, 10));
      (globalThis.__unloads ||= []).push('counter');
    };`,
  'jobs/lib/helper.js': `module.exports = { version: 1 };`,
  'jobs/esmcounter.mjs': `
    let n = 0;
    export default () => ++n;
    export function unload() { (globalThis.__unloads ||= []).push('esm'); }`,
  'jobs/badunload.js': `
    let n = 0;
    module.exports = () => ++n;
    module.exports.unload = () => { throw new Error('unload failed'); };`,
  'jobs/plain.js': `let n = 0; module.exports = () => ++n;`,
  'jobs/klass.js': `module.exports = class { handle() { return 1; } counter() { return 'c'; } };`,
});
const jobsDir = path.join(root, 'jobs');
after(() => fs.rmSync(root, { recursive: true, force: true }));

const run = async (jobs, name) => (await jobs.resolve(name)).run(null, null, undefined);

describe('job names', () => {
  test('relative names are accepted', () => {
    for (const ok of ['echo', 'images/resize', './echo', 'a.b/c-d_e', 'echo.js', 'ünïcode/ジョブ']) {
      assert.equal(invalidName(ok), null, ok);
    }
  });
  test('escapes, absolute paths and control characters are refused', () => {
    for (const bad of ['', '..', '../x', 'a/../../x', 'a/..', '/abs', '\\abs', 'C:\\x', 'c:x', 'a\u0000b', 'a\nb', 'a\u007fb', 'a\\..\\b']) {
      assert.notEqual(invalidName(bad), null, JSON.stringify(bad));
    }
    assert.notEqual(invalidName(5), null);
  });
  test('resolution stays inside the jobs folder and reports JobNotFound', () => {
    const jobs = new FileJobs({ jobsDir });
    assert.equal(jobs.resolveFile('counter'), path.join(jobsDir, 'counter.js'));
    assert.equal(jobs.resolveFile('lib/helper'), path.join(jobsDir, 'lib', 'helper.js'));
    assert.throws(() => jobs.resolveFile('../jobs/counter'), { name: 'JobNotFound', message: /escapes/ });
    assert.throws(() => jobs.resolveFile('nope'), { name: 'JobNotFound', message: /not found/ });
    assert.throws(() => jobs.resolveFile('x', path.join(root, 'none.js')), { name: 'JobNotFound', message: /does not exist/ });
  });
});

describe('shapes', () => {
  test('isClass: class syntax, "[class" toString, ES5 constructor with prototype.handle', () => {
    assert.ok(isClass(class {}));
    assert.ok(isClass(class X extends Object {}));
    function Old() {}
    Old.prototype.handle = () => 1;
    assert.ok(isClass(Old));
    const Bytecode = function () {};
    Bytecode.toString = () => '[class Bytecode]';
    assert.ok(isClass(Bytecode));
    assert.ok(!isClass(function plain() {}));
    assert.ok(!isClass(() => 1));
    assert.ok(!isClass(async () => 1));
    assert.ok(!isClass({ handle() {} }));
  });

  test('pickTarget: module.exports, exports.default, __esModule, namespaces', () => {
    const fn = () => 1;
    assert.equal(pickTarget(fn), fn);
    assert.equal(pickTarget({ default: fn }), fn);
    const withHandle = { handle: fn, default: () => 2 };
    assert.equal(pickTarget(withHandle), withHandle, 'an object with handle() is the handler');
    const ns = Object.freeze(Object.assign(Object.create(null), { default: fn, [Symbol.toStringTag]: 'Module' }));
    assert.equal(pickTarget(ns), fn);
    const named = Object.freeze(Object.assign(Object.create(null), { handle: fn, [Symbol.toStringTag]: 'Module' }));
    assert.equal(pickTarget(named), named);
  });

  test('findFunction stops before Object.prototype and Function.prototype', () => {
    class A {
      m() {}
    }
    class B extends A {}
    const b = new B();
    assert.equal(findFunction(b, 'm'), A.prototype.m);
    for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf', '', 5]) {
      assert.equal(findFunction(b, name), null, String(name));
    }
    const f = () => 1;
    f.extra = () => 2;
    assert.equal(findFunction(f, 'extra'), f.extra);
    assert.equal(findFunction(f, 'call'), null);
    assert.equal(findFunction({ notFn: 1 }, 'notFn'), null);
  });

  test('a definition refuses a module with no handler', () => {
    assert.throws(() => new JobDefinition({ name: 'x', target: { a: 1 } }), { name: 'JobNotFound' });
    assert.throws(() => new JobDefinition({ name: 'x', target: 5 }), { name: 'JobNotFound' });
  });
});

describe('hot reload through the runner', () => {
  process.env.OFFLOAD_JOBS_DIR = jobsDir;
  const runner = require(RUNNER);

  test('the runner exports reload() and starts nothing when required', () => {
    assert.equal(typeof runner.reload, 'function');
    assert.equal(require('../lib/state').worker, null);
    assert.equal(runner.jobs.jobsDir, jobsDir);
  });

  test('CommonJS: unload() is awaited, the module and its local helpers are evicted', async () => {
    const jobs = runner.jobs;
    globalThis.__unloads = [];
    assert.deepEqual(await run(jobs, 'counter'), { n: 1, helper: 1 });
    assert.deepEqual(await run(jobs, 'counter'), { n: 2, helper: 1 }, 'cached between runs');
    writeTree(jobsDir, { 'lib/helper.js': 'module.exports = { version: 2 };' });
    const file = path.join(jobsDir, 'counter.js');
    assert.ok(require.cache[file]);
    await runner.reload('counter');
    assert.deepEqual(globalThis.__unloads, ['counter']);
    assert.equal(require.cache[file], undefined);
    assert.equal(require.cache[path.join(jobsDir, 'lib', 'helper.js')], undefined);
    assert.deepEqual(await run(jobs, 'counter'), { n: 1, helper: 2 }, 'a fresh module, new helper');
  });

  test('ESM: unload() is called and the next run imports a fresh module', async () => {
    const jobs = runner.jobs;
    globalThis.__unloads = [];
    assert.equal(await run(jobs, 'esmcounter'), 1);
    assert.equal(await run(jobs, 'esmcounter'), 2);
    await runner.reload(path.join(jobsDir, 'esmcounter.mjs'));
    assert.deepEqual(globalThis.__unloads, ['esm']);
    assert.equal(await run(jobs, 'esmcounter'), 1);
  });

  test('a job without unload() reloads; a failing unload() rejects but the module is still evicted', async () => {
    const jobs = runner.jobs;
    assert.equal(await run(jobs, 'plain'), 1);
    await runner.reload('plain');
    assert.equal(await run(jobs, 'plain'), 1);
    assert.equal(await run(jobs, 'badunload'), 1);
    await assert.rejects(runner.reload('badunload'), /unload failed/);
    assert.equal(await run(jobs, 'badunload'), 1);
  });

  test('after reload the job is a new definition', async () => {
    const jobs = runner.jobs;
    const def = await jobs.resolve('klass');
    assert.equal(def.run(null, null, undefined), 1);
    await runner.reload('klass');
    const again = await jobs.resolve('klass');
    assert.notEqual(again, def);
    assert.equal(again.call('counter', []), 'c');
  });

  test('settled(): the loaded definition without a promise, by name and by path, until a reload', async () => {
    const jobs = runner.jobs;
    const file = path.join(jobsDir, 'klass.js');
    await runner.reload('klass');
    assert.equal(jobs.settled('klass'), null, 'not loaded: resolve() loads it');
    assert.equal(jobs.settled('', file), null);
    const def = await jobs.resolve('klass');
    assert.equal(jobs.settled('klass'), def);
    assert.equal(jobs.settled('other', file), def, 'a path wins over the name');
    await runner.reload(file);
    assert.equal(jobs.settled('klass'), null, 'forgotten with the module');
    assert.equal(jobs.settled('', file), null);
    const again = await jobs.resolve('', file);
    assert.notEqual(again, def);
    assert.equal(jobs.settled('klass'), again);
    assert.equal(jobs.settled('../escape'), null, 'a refused name: resolve() gives the error');
    assert.equal(jobs.settled('missing'), null);
  });

  test('settled(): a file that failed to load is not settled, and loads again once fixed', async () => {
    const jobs = new FileJobs({ jobsDir });
    writeTree(jobsDir, { 'broken.js': 'module.exports = ;' });
    await assert.rejects(jobs.resolve('broken'), SyntaxError);
    assert.equal(jobs.settled('broken'), null);
    writeTree(jobsDir, { 'broken.js': 'module.exports = () => "fixed";' });
    delete require.cache[path.join(jobsDir, 'broken.js')];
    assert.equal(await run(jobs, 'broken'), 'fixed');
    assert.equal(jobs.settled('broken').run(null, null, undefined), 'fixed');
  });

  test('reloading a job never loaded is harmless', async () => {
    await runner.reload(path.join(jobsDir, 'lib', 'helper.js'));
  });
});
