#!/usr/bin/env node
'use strict';
// Round-trip latency of one job at a time: spawns a worker with a Node IPC channel at fd 3
// (json serialization, as the supervisor sets it up), then sends N sequential `run` echo jobs,
// each after the previous answer, and prints p50/p99 latency and jobs/s. A benchmark, not a
// test. Usage:
//
//   node sdks/node/bench/roundtrip.js [N=5000] [runner|plain|both]

const { spawn } = require('node:child_process');
const path = require('node:path');

const N = Number(process.argv[2]) || 5000;
const which = process.argv[3] || 'both';
const WARMUP = 500;
const REPO = path.join(__dirname, '..', '..', '..');
const WORKERS = {
  runner: path.join(REPO, 'sdks', 'node', 'runner.js'),
  plain: path.join(REPO, 'tests', 'conformance', 'plain-worker.js'),
};

function start(script) {
  const env = { ...process.env, OFFLOAD_CHANNEL_FD: '3', OFFLOAD_PROTOCOL: '1' };
  env.OFFLOAD_JOBS_DIR = path.join(REPO, 'tests', 'conformance', 'jobs');
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [script], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'json',
    env,
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
    child.once('message', (m) => {
      if (m.type !== 'ready') reject(new Error(`expected ready, got ${JSON.stringify(m)}`));
      resolve({ child, readyMs: Number(process.hrtime.bigint() - t0) / 1e6 });
    });
  });
}

async function bench(name, script) {
  const { child, readyMs } = await start(script);
  let pending = null;
  child.on('message', (m) => {
    if (pending && m.id === pending.id) {
      const p = pending;
      pending = null;
      p.resolve(m);
    }
  });
  const roundTrip = (i) =>
    new Promise((resolve) => {
      pending = { id: `j${i}`, resolve };
      child.send({ type: 'run', id: `j${i}`, job: 'echo', params: { i } });
    });
  for (let i = 0; i < WARMUP; i++) await roundTrip(-i - 1);
  const times = new Float64Array(N);
  const start0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const t = process.hrtime.bigint();
    const m = await roundTrip(i);
    times[i] = Number(process.hrtime.bigint() - t) / 1e3;
    if (m.type !== 'result' || m.value.i !== i) throw new Error(`bad answer ${JSON.stringify(m)}`);
  }
  const totalS = Number(process.hrtime.bigint() - start0) / 1e9;
  child.removeAllListeners('exit');
  child.disconnect();
  times.sort();
  const q = (p) => times[Math.min(N - 1, Math.floor(p * N))];
  console.log(
    `${name.padEnd(7)} ${N} sequential echo jobs: p50 ${q(0.5).toFixed(1)} µs, p99 ${q(0.99).toFixed(1)} µs, ` +
      `${Math.round(N / totalS)} jobs/s (spawn to ready ${readyMs.toFixed(0)} ms)`,
  );
}

(async () => {
  console.log(`node ${process.versions.node}, ${require('node:os').cpus().length} CPUs`);
  for (const name of which === 'both' ? ['runner', 'plain'] : [which]) await bench(name, WORKERS[name]);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
