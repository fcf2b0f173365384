'use strict';
// The seed's module contract (lib/background-service.js): TExecute(parts, client) and
// UExecute(parts) modules run unchanged through the runner, with the params the daemon's line
// protocol submits.

const assert = require('node:assert/strict');
const { describe, test, after } = require('node:test');
const fs = require('node:fs');
const path = require('node:path');
const { WorkerProcess, tempTree } = require('./harness');
const { FileJobs } = require('../lib/jobs');
const { partsOf, ReplyClient, QUIET_MS } = require('../lib/background-service');

const root = tempTree({
  // Written like the seed's modules: callback style, never ending the socket.
  'modules/upper.js': `
    exports.TExecute = function (parts, client) {
      setTimeout(function () { client.write(parts[0] + '>'); client.write(String(parts[1]).toUpperCase()); }, 5);
    };
    exports.UExecute = function (parts) {
      return 'logged ' + parts[1];
    };`,
  'modules/ender.js': `
    exports.TExecute = function (parts, client) {
      client.write(Buffer.from('a'));
      client.end('b', function () { globalThis.__endCb = true; });
      client.write('after end is refused');
    };`,
  'modules/asyncmod.js': `
    exports.TExecute = async (parts, client) => {
      await new Promise((r) => setTimeout(r, 5));
      client.write('peer=' + client.remoteAddress + ':' + client.remotePort);
    };`,
  'modules/udponly.js': `exports.UExecute = (parts) => ({ parts });`,
  'modules/tonly.js': `exports.TExecute = (parts, client) => client.end('t:' + parts[1]);`,
  'modules/throws.js': `exports.TExecute = () => { throw new TypeError('bad input'); };`,
  'modules/rejects.js': `exports.TExecute = async (parts, client) => { client.write('x'); throw new Error('late'); };`,
  'modules/esm.mjs': `export function TExecute(parts, client) { client.end('esm ' + parts[1]); }`,
  // The seed's fail.js: a module without exports.
  'modules/fail.js': `// nothing exported\n`,
  'modules/silent.js': `exports.TExecute = function () {};`,
  'modules/unloads.js': `
    exports.TExecute = (parts, client) => client.end('x');
    exports.Unload = () => { globalThis.__seedUnloaded = (globalThis.__seedUnloaded || 0) + 1; };`,
});
const jobsDir = path.join(root, 'modules');
after(() => fs.rmSync(root, { recursive: true, force: true }));

const tcp = (module, data) => ({ module, data, parts: [module, data], transport: 'tcp', peer: '127.0.0.1:4242' });
const udp = (module, data) => ({ ...tcp(module, data), transport: 'udp' });

let worker = null;
function shared() {
  if (!worker) {
    const w = new WorkerProcess({ jobsDir, env: { OFFLOAD_CONCURRENCY: '8' } });
    worker = w.ready().then(() => w);
  }
  return worker;
}
after(async () => {
  if (worker) (await worker).kill();
});

describe('seed modules through the runner', { concurrency: 4 }, () => {
  test('TExecute: what the module writes is the result, complete after a quiet time', async () => {
    const w = await shared();
    const t = Date.now();
    const r = await w.run('upper', tcp('upper', 'less: a\nb'));
    assert.equal(r.value, 'upper>LESS: A\nB');
    assert.ok(Date.now() - t >= QUIET_MS, 'waits for the quiet time after the last write');
  });

  test('TExecute: client.end() completes the reply at once; writes after it are refused', async () => {
    const w = await shared();
    assert.equal((await w.run('ender', tcp('ender', ''))).value, 'ab');
  });

  test('TExecute returning a promise: complete when it settles; client carries the peer', async () => {
    const w = await shared();
    assert.equal((await w.run('asyncmod', tcp('asyncmod', ''))).value, 'peer=127.0.0.1:4242');
  });

  test('UExecute over UDP; its return value is stored', async () => {
    const w = await shared();
    assert.equal((await w.run('upper', udp('upper', 'sid-1'))).value, 'logged sid-1');
  });

  test('a module with only UExecute answers over TCP with its value; only TExecute runs over UDP', async () => {
    const w = await shared();
    assert.deepEqual((await w.run('udponly', tcp('udponly', 'd'))).value, { parts: ['udponly', 'd'] });
    assert.equal((await w.run('tonly', udp('tonly', 'd'))).value, 't:d');
  });

  test('a throw or a rejection is the job error', async () => {
    const w = await shared();
    const a = await w.run('throws', tcp('throws', ''));
    assert.equal(a.error.name, 'TypeError');
    assert.equal(a.error.message, 'bad input');
    const b = await w.run('rejects', tcp('rejects', ''));
    assert.equal(b.error.message, 'late');
  });

  test('ES modules exporting TExecute', async () => {
    const w = await shared();
    assert.equal((await w.run('esm', tcp('esm', 'ok'))).value, 'esm ok');
  });

  test("the seed's fail.js (no exports) is JobNotFound", async () => {
    const w = await shared();
    const r = await w.run('fail', tcp('fail', ''));
    assert.equal(r.error.name, 'JobNotFound');
    assert.match(r.error.message, /TExecute\/UExecute/);
  });

  test('submitted over HTTP with {"data"}: parts from the job name and data', async () => {
    const w = await shared();
    assert.equal((await w.run('tonly', { data: 'http' })).value, 't:http');
  });

  test('a cancel aborts a reply that never comes', async () => {
    const w = await shared();
    // TExecute that writes nothing and returns no promise waits for its reply until cancelled.
    w.send({ type: 'run', id: 'silent', job: 'silent', params: tcp('silent', '') });
    await new Promise((r) => setTimeout(r, 50));
    w.send({ type: 'cancel', id: 'silent' });
    const r = await w.answer('silent');
    assert.equal(r.error.name, 'Cancelled');
  });
});

describe('in process', () => {
  test('partsOf: params.parts, else module/data, else the job name', () => {
    assert.deepEqual(partsOf(tcp('a', 'b:c')), ['a', 'b:c']);
    assert.deepEqual(partsOf({ module: 'm', data: 1 }), ['m', 1]);
    assert.deepEqual(partsOf('raw', 'dir/job'), ['job', 'raw']);
    assert.deepEqual(partsOf(null, 'job'), ['job', '']);
  });

  test('ReplyClient collects writes like a socket', async () => {
    const c = new ReplyClient('[::1]:80');
    assert.equal(c.remoteAddress, '::1');
    assert.equal(c.remotePort, 80);
    assert.equal(c.remoteFamily, 'IPv6');
    assert.equal(c.setEncoding('utf8').setNoDelay(true), c);
    assert.equal(c.write('é'), true);
    c.end();
    const err = await new Promise((r) => c.write('x', r));
    assert.equal(err.code, 'ERR_STREAM_WRITE_AFTER_END');
    assert.equal(c.text, 'é');
  });

  test("the seed's Unload() is called on reload", async () => {
    const jobs = new FileJobs({ jobsDir });
    const def = await jobs.resolve('unloads');
    assert.equal(await def.run(tcp('unloads', ''), null, undefined), 'x');
    await jobs.reload('unloads');
    assert.equal(globalThis.__seedUnloaded, 1);
  });
});
