'use strict';
// The daemon client against a real `offload serve` (127.0.0.1, port 0, a temporary data folder).
// The binary: $OFFLOAD_BIN, else $CARGO_TARGET_DIR/debug/offload, else <repo>/target/debug/offload
// (scripts/test builds it before these tests run).
const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Client, ClientError } = require('..');
const { ROOT, JOBS } = require('./helpers');

const REPO = path.join(ROOT, '..', '..');
const BIN =
  process.env.OFFLOAD_BIN ||
  [process.env.CARGO_TARGET_DIR && path.resolve(REPO, process.env.CARGO_TARGET_DIR, 'debug', 'offload'), path.join(REPO, 'target', 'debug', 'offload')].find(
    (p) => p && fs.existsSync(p),
  );

let daemon;
let url;
let data;
before(async () => {
  assert.ok(BIN, 'the offload binary: build it (cargo build -p offload-cli) or set OFFLOAD_BIN');
  data = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-client-'));
  daemon = spawn(BIN, ['serve', '--jobs', JOBS, '--data', data, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, OFFLOAD_LOG: 'info', OFFLOAD_SDK_DIR: path.join(REPO, 'sdks') },
  });
  let err = '';
  url = await new Promise((resolve, reject) => {
    daemon.stderr.setEncoding('utf8').on('data', (d) => {
      err += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(err);
      if (m) resolve(m[1]);
    });
    daemon.on('exit', (code) => reject(new Error(`offload serve exited (${code}): ${err}`)));
  });
});
after(async () => {
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.on('exit', r));
  }
  if (data) fs.rmSync(data, { recursive: true, force: true });
});

test('submit, result({wait}), status, list, events, cancel, retry, submitBatch; errors are typed', async () => {
  const client = new Client({ server: url });
  const events = client.events();
  const { id, state } = await client.submit('echo', { n: 5 });
  assert.equal(typeof id, 'string');
  assert.ok(['queued', 'running', 'succeeded'].includes(state));
  let r = await client.result(id, { wait: 30 });
  for (let i = 0; !r.done && i < 10; i++) r = await client.result(id, { wait: 30 });
  assert.equal(r.done, true);
  assert.equal(r.state, 'succeeded');
  assert.deepEqual(r.result, { n: 5 });
  const st = await client.status(id);
  assert.equal(st.job, 'echo');
  assert.ok(st.attempts.length >= 1);
  const seen = [];
  for await (const ev of events) {
    seen.push(ev);
    if (ev.event === 'job' && ev.data.id === id && ev.data.state === 'succeeded') break;
  }
  assert.ok(seen.some((e) => e.event === 'progress' && e.data.id === id));
  const listed = await client.list({ job: 'echo', limit: 10 });
  assert.ok(listed.jobs.some((j) => j.id === id));

  const slow = await client.submit('slow', { ms: 60000 });
  const c = await client.cancel(slow.id);
  assert.equal(c.id, slow.id);
  let s = await client.result(slow.id, { wait: 30 });
  for (let i = 0; !s.done && i < 10; i++) s = await client.result(slow.id, { wait: 30 });
  assert.equal(s.state, 'cancelled');
  const again = await client.retry(slow.id);
  assert.equal(again.state, 'queued');
  await client.cancel(slow.id);

  const batch = await client.submitBatch([{ job: 'echo', params: { n: 1 } }, { job: 'echo', params: { n: 2 } }]);
  assert.equal(batch.length, 2);

  await assert.rejects(client.submit('no-such-job', {}), (e) => e instanceof ClientError && e.status === 404 && e.code === 'unknown_job');
  await assert.rejects(client.status('00000000-0000-0000-0000-000000000000'), (e) => e.status === 404);
  await assert.rejects(client.retry(id), (e) => e.status === 409 && e.code === 'conflict');
  await assert.rejects(new Client({ server: 'http://127.0.0.1:1' }).list(), (e) => e.code === 'unreachable');
  assert.throws(() => new Client({ server: 'ftp://x' }), ClientError);
});
