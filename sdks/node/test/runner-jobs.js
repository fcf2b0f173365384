'use strict';
// The job files `runner.test.js` runs, by path under its temporary jobs folder.

const JOBS = {
  // --- shapes
  'shapes/klass.js': `
    let made = 0;
    module.exports = class Klass {
      constructor(params, ctx) { made += 1; this.params = params; this.ctxId = ctx && ctx.id; this.args = [...arguments]; }
      handle(params, ctx) { return { params, same: params === this.params, ctxId: ctx && ctx.id, ctorCtx: this.ctxId, made, argc: arguments.length }; }
      stash(v) { return { mine: this.params, v }; }
      sum(a, b) { return a + b; }
      static helper() { return 'static'; }
    };`,
  'shapes/gate.js': `
    module.exports = class Gate {
      constructor(params) { this.params = params === undefined ? null : params; }
      handle(params, ctx) {
        ctx.progress('waiting');
        return new Promise((resolve) => { this.release = (v) => resolve({ params, opened: v }); });
      }
      open(v) { if (this.release) this.release(v); return this.params; }
    };`,
  'shapes/legacyclass.js': `
    module.exports = class Legacy {
      constructor(...args) { this.ctorArgs = args; }
      handle(...args) { return { ctorArgs: this.ctorArgs, handleArgs: args }; }
    };`,
  'shapes/fn.js': `
    module.exports = function fn(params, ctx) { return { params, id: ctx && ctx.id, argc: arguments.length }; };
    module.exports.twice = (x) => x * 2;`,
  'shapes/asyncfn.js': `module.exports = async (params) => { await new Promise((r) => setTimeout(r, 5)); return ['async', params]; };`,
  'shapes/obj.js': `
    module.exports = {
      factor: 3,
      handle(params, ctx) { return { v: params * this.factor, job: ctx.job }; },
      mul(a) { return a * this.factor; },
    };`,
  'shapes/exportsdefault.js': `exports.default = (params) => ({ viaDefault: params });`,
  'shapes/esmodule.js': `Object.defineProperty(exports, '__esModule', { value: true }); class J { handle(p) { return { ts: p }; } } exports.default = J;`,
  'shapes/nothing.js': `module.exports = { notHandle: 1 };`,
  'shapes/nohandle.js': `module.exports = class NoHandle { other() { return 1; } };`,
  'shapes/es5class.js': `
    function Old(params) { this.p = params; }
    Old.prototype.handle = function () { return { es5: this.p }; };
    module.exports = Old;`,
  'shapes/undef.js': `module.exports = () => undefined;`,
  'sub/index.js': `module.exports = () => 'index.js';`,
  'dotcjs.cjs': `module.exports = () => 'cjs';`,
  'withext.js': `module.exports = () => 'withext';`,
  // --- errors
  'throws.js': `
    class ValidationError extends Error {}
    class Named extends Error { constructor(m) { super(m); this.name = 'CustomName'; } }
    module.exports = (p) => {
      switch (p.kind) {
        case 'string': throw 'just a string';
        case 'number': throw 42;
        case 'object': throw { code: 7 };
        case 'null': throw null;
        case 'undefined': throw undefined;
        case 'subclass': throw new ValidationError('bad input');
        case 'named': throw new Named('named one');
        case 'type': return null.x;
        case 'reject': return Promise.reject(new RangeError('rejected'));
        case 'bigint': return { n: 10n };
        case 'circular': { const o = {}; o.o = o; return o; }
        case 'hugeError': throw new Error('e'.repeat(10000));
      }
      return 'no throw';
    };`,
  'syntaxerror.js': `module.exports = () => {;`,
  'stray.js': `
    module.exports = async (p) => {
      setTimeout(() => { throw new Error('stray ' + p.tag); }, 10);
      await new Promise((r) => setTimeout(r, 10000));
    };`,
  // --- ctx
  'ctx.js': `
    module.exports = async (params, ctx) => {
      ctx.log('plain', 1);
      ctx.log.warn('warned');
      process.stdout.write('to stdout\\n');
      ctx.emit('e-all', { a: 1 });
      ctx.emit('e-task', null, 'task');
      ctx.emit('e-legacy', 2, 'childJob');
      let bad;
      try { ctx.emit('x', 1, 'nobody'); } catch (e) { bad = e.name; }
      let tooBig;
      try { ctx.progress('y'.repeat(5000)); } catch (e) { tooBig = e.name; }
      ctx.progress(1);
      return { id: ctx.id, job: ctx.job, params: ctx.params, deadline: ctx.deadline, cancelled: ctx.cancelled,
               aborted: ctx.signal.aborted, kind: ctx.kind, bad, tooBig };
    };`,
  'sdkuse.js': `
    const sdk = require('offload-worker');
    module.exports = async () => {
      await null;
      const ctx = sdk.context();
      sdk.progress('via sdk');
      setTimeout(() => {}, 1);
      return { same: ctx && ctx.id, outside: typeof sdk.onEvent, cls: new sdk.CancelledError('x').name };
    };`,
  // --- signals
  'ignore.js': `
    module.exports = async (p, ctx) => {
      ctx.progress('started');
      await new Promise((r) => setTimeout(r, p.ms));
      return { done: true, cancelled: ctx.cancelled, reason: ctx.signal.reason && ctx.signal.reason.name };
    };`,
  'waitabort.js': `
    module.exports = (p, ctx) => new Promise((_, reject) => {
      ctx.progress('started');
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
    });`,
  'wrongafterabort.js': `
    module.exports = (p, ctx) => new Promise((_, reject) => {
      ctx.progress('started');
      ctx.signal.addEventListener('abort', () => reject(new TypeError('cleanup failed')));
    });`,
  'timers.js': `
    const { setTimeout: sleep } = require('node:timers/promises');
    module.exports = async (p, ctx) => { await sleep(p.ms, null, { signal: ctx.signal }); return 'done'; };`,
  'slow.js': `
    module.exports = async (p) => { await new Promise((r) => setTimeout(r, p.ms)); return p.ms; };`,
  // --- events
  'listen.js': `
    const { onEvent } = require('offload-worker');
    const seen = [];
    onEvent('config', async (data, meta) => {
      await new Promise((r) => setTimeout(r, 50));
      seen.push({ data, id: meta.id });
    });
    onEvent('config', () => { throw new Error('listener failure is logged'); });
    module.exports = () => seen;`,
  // --- exit
  'exits.js': `
    module.exports = (p, ctx) => { ctx.emit('before-exit', 1); require('ee-core/ps').exit(p.code); };`,
};

module.exports = { JOBS };
