'use strict';
// The pool's load-process-manager controls (issue 17): soft and hard kill of one worker,
// killAll in parallel or in sequence, pings (a stuck worker is replaced), heap and CPU recycle,
// and descriptors passed with a run — against real worker processes, leaks read from /proc.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { describe, test } = require('node:test');
const offload = require('..');
const { JOBS, alive, until } = require('./helpers');

const { ChildPool } = offload;

/** The arguments of the first `event` of `pool` whose first argument is `pid` (`undefined`:
 * any); rejects after `ms`. Its timer keeps the event loop alive meanwhile (the pool's event
 * callback does not). */
function eventFor(pool, event, pid, ms = 30000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pool.off(event, on);
      reject(new Error(`no ${event} for ${pid} within ${ms} ms`));
    }, ms);
    function on(...args) {
      if (pid === undefined || args[0] === pid) {
        clearTimeout(timer);
        pool.off(event, on);
        resolve(args);
      }
    }
    pool.on(event, on);
  });
}

/** A task's pid once it started. */
function started(task) {
  return new Promise((resolve) => task.once('started', ({ pid }) => resolve(pid)));
}

async function stop(pool) {
  const pids = pool.pids();
  await pool.kill();
  await until(() => pids.every((p) => !alive(p)), 20000, 'workers gone');
}

describe('killWorker and killAll', () => {
  test('soft: the running job finishes, then the worker exits and is replaced', async () => {
    const pool = await ChildPool.start({ jobs: JOBS, min: 1, max: 1, retries: 0 });
    try {
      const task = pool.submit('slow', { ms: 600 });
      const pid = await started(task);
      const exited = eventFor(pool, 'workerExited', pid);
      assert.equal(await pool.killWorker(pid, { mode: 'soft', grace: 20000 }), true);
      assert.equal(await task.result, 'slept');
      await exited;
      await until(() => !alive(pid), 20000, 'soft-killed worker gone');
      const next = await pool.run('pid', null);
      assert.notEqual(next, pid);
    } finally {
      await stop(pool);
    }
  });

  test('hard: the running job ends with the kill; the worker is replaced', async () => {
    const pool = await ChildPool.start({ jobs: JOBS, min: 1, max: 1, retries: 0 });
    try {
      const task = pool.submit('stubborn', null);
      const pid = await started(task);
      await new Promise((r) => task.once('progress', r)); // it ignores SIGTERM from here on
      assert.equal(await pool.killWorker(pid, { mode: 'hard', grace: 300 }), true);
      // The Node SDK exits by itself on the kill notice, before the SIGKILL: still Killed.
      await assert.rejects(task.result, (e) => e.code === 'Killed' && e.job === 'stubborn');
      await until(() => !alive(pid), 20000, 'hard-killed worker gone');
      assert.notEqual(await pool.run('pid', null), pid);
    } finally {
      await stop(pool);
    }
  });

  test('a pid that is not a worker resolves false; bad options are refused by name', async () => {
    const pool = await ChildPool.start({ jobs: JOBS, min: 1, max: 1 });
    try {
      assert.equal(await pool.killWorker(process.pid, { mode: 'soft' }), false);
      await assert.rejects(pool.killWorker(pool.pids()[0], { mode: 'gentle' }), (e) => e.code === 'InvalidArgument' && /"mode"/.test(e.message));
      await assert.rejects(pool.killWorker(pool.pids()[0], { mode: 'hard', signal: 'SIGKILL' }), (e) => e.code === 'InvalidArgument');
      await assert.rejects(pool.killAll({ order: 'random' }), (e) => e.code === 'InvalidArgument' && /"order"/.test(e.message));
      assert.equal(pool.pids().length, 1);
    } finally {
      await stop(pool);
    }
  });

  for (const order of ['parallel', 'sequence']) {
    test(`killAll ${order}: every worker gets the kill and the pool ends`, async () => {
      const pool = await ChildPool.start({ jobs: JOBS, min: 3, max: 3 });
      const pids = pool.pids();
      assert.equal(pids.length, 3);
      const killed = [];
      pool.on('workerExited', (pid) => killed.push(pid));
      await pool.killAll({ mode: 'soft', order, grace: 5000 });
      assert.ok(pids.every((p) => !alive(p)), 'no worker left when killAll resolves');
      await until(() => killed.length === 3, 20000, 'three exits');
      assert.deepEqual([...killed].sort(), [...pids].sort());
      await assert.rejects(pool.run('pid', null), (e) => e.code === 'ShuttingDown');
    });
  }
});

describe('liveness and health', () => {
  test('pingInterval/pingTimeout: a worker stuck outside any job is replaced', async () => {
    const pool = await ChildPool.start({
      jobs: JOBS, min: 1, max: 1, pingInterval: 50, pingTimeout: 1000, healthInterval: 50, killGrace: 200,
    });
    try {
      const pid = await pool.run('stall-after', { ms: 60000 });
      const [, waitedMs] = await eventFor(pool, 'workerUnresponsive', pid);
      assert.ok(waitedMs >= 1000, `waited ${waitedMs} ms`);
      await until(() => !alive(pid), 20000, 'stuck worker gone');
      assert.notEqual(await pool.run('pid', null), pid);
    } finally {
      await stop(pool);
    }
  });

  test('recycle.heap: a worker above it (from its pongs) is replaced, reason heap', async () => {
    const pool = await ChildPool.start({
      jobs: JOBS, min: 1, max: 1, pingInterval: 50, healthInterval: 50, recycle: { heap: 32 * 1024 * 1024 },
    });
    try {
      const recycled = eventFor(pool, 'workerRecycled');
      const pid = await pool.run('heap-hold', { mb: 64 });
      assert.deepEqual(await recycled, [pid, 'heap']);
      await until(() => !alive(pid), 20000, 'recycled worker gone');
    } finally {
      await stop(pool);
    }
  });

  test('recycle.cpu: a worker above it for cpuSamples samples is replaced after its job', async () => {
    const pool = await ChildPool.start({
      // 5 %: a spinning worker gets at least 2 cores / load of a core (11 % at load 18).
      jobs: JOBS, min: 1, max: 1, healthInterval: 100, recycle: { cpu: 5, cpuSamples: 2 },
    });
    try {
      const recycled = eventFor(pool, 'workerRecycled');
      const pid = await pool.run('spin', { ms: 4000 });
      assert.deepEqual(await recycled, [pid, 'cpu']);
      await until(() => !alive(pid), 20000, 'recycled worker gone');
    } finally {
      await stop(pool);
    }
  });

  test('bad liveness and health options are refused with the option and its limit named', () => {
    const bad = [
      [{ pingInterval: 5 }, /"pingInterval" must be at least 10 ms/],
      [{ pingTimeout: 1 }, /"pingTimeout" must be at least 10 ms/],
      [{ recycle: { cpu: 20000 } }, /"recycle.cpu".*at most 10000/],
      [{ recycle: { cpuSamples: 5000 } }, /"recycle.cpuSamples" must be at most 1000/],
      [{ recycle: { heap: -1 } }, /"recycle.heap"/],
      [{ recycle: { hepa: 1 } }, /unknown option "hepa"/],
    ];
    for (const [opts, re] of bad) {
      assert.throws(() => new ChildPool({ jobs: JOBS, ...opts }), (e) => e.code === 'InvalidArgument' && re.test(e.message), JSON.stringify(opts));
    }
  });
});

/** Open descriptors of this process. */
const openFds = () => fs.readdirSync('/proc/self/fd').length;

describe('descriptors passed with a run (fds)', () => {
  test('a connected socket reaches the job as a net.Socket; nothing leaks on either side', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-fds-'));
    const where = path.join(dir, 's.sock');
    const pool = await ChildPool.start({ jobs: JOBS, min: 1, max: 1 });
    const server = net.createServer();
    try {
      await new Promise((r) => server.listen(where, r));
      const before = openFds();
      for (let i = 0; i < 3; i++) {
        const accepted = new Promise((r) => server.once('connection', r));
        const client = net.connect(where);
        const answer = new Promise((resolve) => {
          let text = '';
          client.on('data', (d) => (text += d));
          client.on('end', () => resolve(text));
        });
        const sock = await accepted;
        const run = pool.run('fd-write', { text: `hello ${i}` }, { fds: [sock] });
        sock.destroy(); // the run holds its own copy
        assert.equal(await run, 1);
        assert.equal(await answer, `hello ${i} from ${pool.pids()[0]}`);
        client.destroy();
      }
      await until(() => openFds() === before, 5000, `open descriptors back to ${before}`);
    } finally {
      server.close();
      await stop(pool);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a descriptor the worker cannot take, a closed one, a bad number: typed errors, no leak', async () => {
    const pool = await ChildPool.start({ jobs: JOBS, min: 1, max: 1 });
    const file = path.join(JOBS, 'pid.js');
    try {
      const before = openFds();
      const fd = fs.openSync(file, 'r');
      // The Node SDK takes sockets only: a file is refused before it is passed.
      await assert.rejects(pool.run('fd-write', { text: 'x' }, { fds: [fd] }), (e) => e instanceof offload.FdError && e.code === 'FdWrongKind' && e.job === 'fd-write');
      fs.closeSync(fd);
      await assert.rejects(pool.run('fd-write', {}, { fds: [fd] }), (e) => e.code === 'InvalidArgument' && /fds\[0\]/.test(e.message));
      const closed = new net.Socket();
      await assert.rejects(pool.run('fd-write', {}, { fds: [closed] }), (e) => e.code === 'InvalidArgument' && /fds\[0\]/.test(e.message));
      await assert.rejects(pool.run('fd-write', {}, { fds: 'no' }), (e) => e.code === 'InvalidArgument');
      await until(() => openFds() === before, 5000, `open descriptors back to ${before}`);
      assert.equal(typeof (await pool.run('pid', null)), 'number'); // the worker is still healthy
    } finally {
      await stop(pool);
    }
  });
});
