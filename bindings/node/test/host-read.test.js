'use strict';
// A pool's workers' channels are read on the JavaScript thread (src/host_poll.rs): a busy
// thread delays answers but never turns one into a timeout, events keep their order, a worker
// killed mid-job or a worker_threads environment that ends leaves nothing behind, and pools
// started and shut down leave no descriptor and no handle keeping Node alive.
const assert = require('node:assert/strict');
const { describe, test } = require('node:test');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const offload = require('..');
const { JOBS, alive, until } = require('./helpers');

const { ChildPool } = offload;

/** Blocks the JavaScript thread for `ms` (user code that never yields). */
function spin(ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy
  }
}

/** This process's open sockets (a worker's channel is one, its watch a duplicate). */
function openSockets() {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

describe('host reading', () => {
  test('a job that answered while JavaScript was busy succeeds; one that did not times out', async () => {
    const pool = await ChildPool.start({ jobs: JOBS, min: 1, max: 1, retries: 0, cancelGrace: 200 });
    try {
      const [pid] = pool.pids();
      const answered = pool.run('slow', { ms: 5 }, { timeout: 300 });
      // The worker answers within 5 ms; this thread reads nothing for 1.5 s, past the timeout:
      // the worker's process reads the answer when the timeout comes.
      spin(1500);
      assert.equal(await answered, 'slept');
      assert.deepEqual(pool.pids(), [pid], 'the worker that answered in time was replaced');
      const silent = pool.run('slow', { ms: 60000 }, { timeout: 100 });
      spin(500);
      await assert.rejects(silent, (e) => e instanceof offload.TimedOutError);
    } finally {
      await pool.shutdown({ deadline: 2000 });
    }
  });

  test('every progress of 24 concurrent jobs comes before its end', async () => {
    const pool = await ChildPool.start({ jobs: JOBS, min: 2, max: 2, concurrency: 4 });
    try {
      const tasks = Array.from({ length: 24 }, (_, n) => pool.submit('echo', { n }));
      const orders = tasks.map((t) => {
        const seen = [];
        t.on('progress', () => seen.push('progress'));
        return { t, seen };
      });
      if (tasks.length) spin(50); // some answers wait in the sockets meanwhile
      for (const { t, seen } of orders) {
        const r = await t.result;
        seen.push('end');
        assert.equal(r.n, tasks.indexOf(t));
        assert.deepEqual(seen, ['progress', 'progress', 'end']);
      }
    } finally {
      await pool.shutdown({ deadline: 2000 });
    }
  });

  test('a worker SIGKILLed mid-job: the job fails Crashed, the replacement answers', async () => {
    const pool = await ChildPool.start({ jobs: JOBS, min: 1, max: 1, retries: 0 });
    try {
      const [pid] = pool.pids();
      const running = pool.run('slow', { ms: 60000 });
      await new Promise((r) => setTimeout(r, 200));
      process.kill(pid, 'SIGKILL');
      await assert.rejects(running, (e) => e instanceof offload.CrashedError);
      assert.deepEqual(await pool.run('echo', { n: 1 }), { n: 1 });
      assert.notDeepEqual(pool.pids(), [pid]);
    } finally {
      await pool.shutdown({ deadline: 2000 });
    }
  });

  test('pools started and shut down leave no channel open', async () => {
    const before = openSockets();
    const pids = [];
    for (let i = 0; i < 20; i++) {
      const pool = await ChildPool.start({ jobs: JOBS, min: 2, max: 2 });
      pids.push(...pool.pids());
      assert.deepEqual(await pool.run('echo', { n: i }), { n: i });
      await pool.shutdown({ deadline: 2000 });
    }
    await until(() => pids.every((p) => !alive(p)), 20000, 'workers gone');
    // The watches close on the loop's next turns, after their workers' end of file.
    await until(() => openSockets() <= before, 20000, `sockets back to ${before} (now ${openSockets()})`);
  });

  test('a pool in a worker thread: the thread ends, Node goes on; nothing keeps Node alive', () => {
    const script = `
      const { Worker, isMainThread, parentPort } = require('node:worker_threads');
      const { ChildPool } = require(${JSON.stringify(path.join(__dirname, '..'))});
      const jobs = ${JSON.stringify(JOBS)};
      const fs = require('node:fs');
      const fds = () => fs.readdirSync('/proc/self/fd').filter((f) => {
        try { return fs.readlinkSync('/proc/self/fd/' + f).startsWith('socket:'); } catch { return false; }
      }).length;
      if (isMainThread) (async () => {
        // The supervisor's own descriptors (its reaper's pipe, /proc/loadavg) open with the
        // first pool of the process: counted before.
        const first = await ChildPool.start({ jobs, min: 1, max: 1 });
        await first.shutdown({ deadline: 2000 });
        const before = fds();
        const w = new Worker(__filename);
        w.on('message', (m) => console.log('worker said', m));
        w.on('exit', async (code) => {
          console.log('worker exit', code);
          // Its pool's workers end (their supervisor lives on in this process) and every
          // descriptor of their channels is closed, watches included.
          const end = Date.now() + 20000;
          while (fds() > before && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
          console.log('descriptors', fds() <= before ? 'back' : 'leaked ' + (fds() - before));
          // A pool on the main thread too, not shut down: Node must still exit by itself.
          const pool = await ChildPool.start({ jobs, min: 1, max: 1 });
          console.log('main ran', JSON.stringify(await pool.run('echo', { n: 2 })));
        });
      })();
      else {
        (async () => {
          const pool = await ChildPool.start({ jobs, min: 2, max: 2 });
          const r = await Promise.all([1, 2, 3].map((n) => pool.run('echo', { n })));
          parentPort.postMessage(r.map((x) => x.n).join(','));
          // No shutdown: the thread's environment ends with the pool's watches open.
          process.exit(0);
        })();
      }
    `;
    const file = path.join(fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'offload-host-read-')), 'main.js');
    fs.writeFileSync(file, script);
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60000 });
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
    assert.equal(r.status, 0, `status ${r.status} signal ${r.signal}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /worker said 1,2,3/);
    assert.match(r.stdout, /worker exit 0/);
    assert.match(r.stdout, /descriptors back/);
    assert.match(r.stdout, /main ran \{"n":2\}/);
  });
});
