'use strict';
// A run's streams (lib/streams.js, docs/protocol.md §10): the `streams` field checked, the
// stream handles split from the others, the output's stall watchdog and typed errors.

const { test } = require('node:test');
const assert = require('node:assert');
const { once } = require('node:events');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');
const { parseStreams, splitStreams, asOutput } = require('../lib/streams');

const fail = (msg) => {
  throw new Error(msg);
};

test('the streams field is checked', () => {
  assert.strictEqual(parseStreams(undefined, 'run', fail), null);
  assert.deepStrictEqual(parseStreams({ input: 1, stall_ms: 300 }, 'run', fail), {
    input: 1,
    output: null,
    stallMs: 300,
  });
  assert.throws(() => parseStreams({ input: -1, stall_ms: 1 }, 'run', fail), /streams.input/);
  assert.throws(() => parseStreams({ input: 0 }, 'run', fail), /stall_ms/);
  assert.throws(() => parseStreams('x', 'run', fail), /object/);
});

test('stream handles leave the others in order; a bad index is FdMissing', () => {
  const { streams, rest } = splitStreams({ input: 2, output: 0, stallMs: 5 }, ['a', 'b', 'c']);
  assert.deepStrictEqual(streams, { input: 'c', output: 'a', stallMs: 5 });
  assert.deepStrictEqual(rest, ['b']);
  assert.throws(
    () => splitStreams({ input: null, output: 3, stallMs: 5 }, ['a']),
    (e) => e.name === 'FdMissing',
  );
});

test('a reader that takes nothing fails the writer with StreamStalled naming the limit', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-streams-'));
  const where = path.join(dir, 's');
  const server = net.createServer({ allowHalfOpen: true }, (c) => c.pause());
  await new Promise((resolve) => server.listen(where, resolve));
  const sock = asOutput(net.connect({ path: where, allowHalfOpen: true }), 100);
  const chunk = Buffer.alloc(64 * 1024);
  const err = await (async () => {
    try {
      for (;;) if (!sock.write(chunk)) await once(sock, 'drain');
    } catch (e) {
      return e;
    }
  })();
  assert.strictEqual(err.name, 'StreamStalled');
  assert.match(err.message, /100 ms/);
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
