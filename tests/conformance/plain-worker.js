'use strict';
// A worker with no SDK (docs/protocol.md §7): a plain Node script, started with the environment
// of §1, that speaks the protocol with process.send() and process.on('message') only. It runs the
// conformance fixture jobs inline. No shutdown, ping or frame-size checks: the cases that need
// those are skipped for "plain-node".

const concurrency = Number(process.env.OFFLOAD_CONCURRENCY) || 1;
const cancels = new Map(); // job id -> function that cancels it
const barriers = new Map(); // n -> { count, waiters }

const sleep = (ms, id) =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    cancels.set(id, () => {
      clearTimeout(t);
      reject(Object.assign(new Error(`job ${id} was cancelled`), { name: 'Cancelled' }));
    });
  });

const jobs = {
  echo: (p) => p,
  fail: (p) => {
    throw new Error(p.message);
  },
  fail_final: (p) => {
    throw Object.assign(new Error(p.message), { name: 'ValidationError', retry: false });
  },
  progress: (p, id) => {
    for (let i = 0; i < p.count; i++) process.send({ type: 'progress', id, data: { i } });
    return p.count;
  },
  sleep: async (p, id) => {
    await sleep(p.ms, id);
    return 'slept';
  },
  emit: (p, id) => {
    process.send({ type: 'event', name: p.name, data: p.data, receiver: 'job', id });
    return null;
  },
  barrier: (p) =>
    new Promise((resolve) => {
      const b = barriers.get(p.n) || { waiters: [] };
      barriers.set(p.n, b);
      b.waiters.push(() => resolve(p.n));
      if (b.waiters.length === p.n) {
        barriers.delete(p.n);
        b.waiters.forEach((w) => w());
      }
    }),
  big: (p) => 'x'.repeat(p.bytes),
};

async function run(id, job, params) {
  try {
    if (!Object.hasOwn(jobs, job)) {
      throw Object.assign(new Error(`no job named ${job}`), { name: 'JobNotFound' });
    }
    const value = await jobs[job](params, id);
    process.send({ type: 'result', id, value: value === undefined ? null : value });
  } catch (e) {
    const error = { name: e.name, message: e.message, stack: e.stack };
    if (e.retry === false) error.retry = false;
    process.send({ type: 'error', id, error });
  } finally {
    cancels.delete(id);
  }
}

process.on('message', (m) => {
  if (m.type === 'run') run(m.id, m.job, m.params);
  else if (m.type === 'cancel') cancels.get(m.id)?.();
  else if (m.cmd === 'run') {
    // ee-core's {mid, cmd: "run", jobPath, jobParams}: the job is the file name without extension.
    const job = require('node:path').basename(m.jobPath || '').replace(/\.[cm]?js$/, '');
    run(m.mid, job, (m.jobParams || [])[0] ?? null);
  }
});

// The supervisor closed the channel (or died): exit, even with jobs running.
process.on('disconnect', () => process.exit(0));

process.send({
  type: 'ready',
  protocol: 1,
  pid: process.pid,
  runtime: `node/${process.versions.node}`,
  capabilities: ['cancel'],
  concurrency,
});
