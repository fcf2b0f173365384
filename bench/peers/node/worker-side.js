'use strict';
// The worker side of (b) alone: one parent (Node's own fork + JSON IPC channel, the channel the
// offload Node SDK runs on) drives either the Node SDK's runner (`sdks/node/runner.js`, sent
// offload `run` frames as the supervisor sends them) or the raw fork child (`fork-child.js`),
// one message in flight, and reads the child's CPU time and context switches from /proc.
// Same parent for both, so the difference is the worker: its JS per job and its wake-ups.
//
//   node worker-side.js --child sdk|fork [--tasks N] [--in-flight K] [--runner PATH] [--job inc|spin]
//
// --runner PATH drives another copy of the SDK's runner.js (e.g. `git archive <commit> sdks/node`
// unpacked in a temporary folder): the SDK before and after a change, alternated in one loop.
//
// --in-flight K (default 1) keeps K messages outstanding (the SDK worker runs with
// OFFLOAD_CONCURRENCY=K): (a)'s pipelined cost per task instead of (b)'s round trip; the p50
// is then not measured.
//
// --job spin runs the 1 ms busy-wait of workload (c) instead of `inc` (check: the value comes
// back unchanged).
//
// WORKER_SIDE_PROF=<dir> writes the child's CPU profile there (`--cpu-prof`, 20 µs samples).
// WORKER_SIDE_THREADS=1 adds the child's CPU per task thread by thread (by thread name: the
// JavaScript thread is "main", the rest by their name: V8's GC helpers, libuv's pool).
const { fork } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const child = args.child || 'sdk';
const tasks = Number(args.tasks || 20000);
const inFlight = Math.max(1, Number(args['in-flight'] || 1));
const JOBS = path.join(__dirname, '..', 'jobs');
const job = args.job || 'inc';
if (!['inc', 'spin'].includes(job)) throw new Error(`--job: inc or spin, not ${job}`);

/** The child's CPU time (all its threads, from schedstat: exact, not tick-sampled) and its
 * context switches. */
function usage(pid) {
  let ns = 0;
  let switches = 0;
  const threads = {};
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    const tns = Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    ns += tns;
    const comm = fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
    const name = t === String(pid) ? 'main' : process.env.WORKER_SIDE_THREADS === 'tid' ? `${comm} ${t - pid}` : `other ${comm}`;
    threads[name] = (threads[name] || 0) + tns;
    const status = fs.readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
    for (const k of ['voluntary_ctxt_switches', 'nonvoluntary_ctxt_switches']) {
      switches += Number(new RegExp(`\\n${k}:\\s+(\\d+)`).exec(status)[1]);
    }
  }
  return { cpuMs: ns / 1e6, switches, threads };
}

async function main() {
  const runner = args.runner ? path.resolve(args.runner) : path.join(__dirname, '..', '..', '..', 'sdks', 'node', 'runner.js');
  const file = child === 'sdk' ? runner : path.join(__dirname, 'fork-child.js');
  const env = { ...process.env, OFFLOAD_PROTOCOL: '1', OFFLOAD_JOBS_DIR: JOBS, OFFLOAD_CONCURRENCY: String(inFlight) };
  const execArgv = process.env.WORKER_SIDE_PROF ? ['--cpu-prof', '--cpu-prof-interval=20', `--cpu-prof-dir=${process.env.WORKER_SIDE_PROF}`] : [];
  if (process.env.WORKER_SIDE_ARGS) execArgv.push(...process.env.WORKER_SIDE_ARGS.split(' '));
  const p = fork(file, [], { env, execArgv, serialization: 'json', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map(); // id -> resolve
  p.on('message', (m) => {
    if (m.type === 'ready' || m.type === 'progress' || m.type === 'event') return;
    const id = child === 'sdk' ? Number(m.id) : m.i;
    const w = waiting.get(id);
    waiting.delete(id);
    if (w) w(m);
  });
  if (child === 'sdk') await new Promise((r) => p.once('message', r)); // ready
  const jobPath = path.join(JOBS, `${job}.js`);
  const t = job === 'spin' ? 's' : 'i';
  const one = (x) => new Promise((resolve) => {
    waiting.set(x, resolve);
    if (child === 'sdk') p.send({ type: 'run', id: String(x), job, path: jobPath, params: { x } });
    else p.send({ i: x, t, x });
  });
  const plus = job === 'spin' ? 0 : 1;
  const check = (x, m) => {
    const v = child === 'sdk' ? m.value : m.v;
    if (v !== x + plus) throw new Error(`bad answer ${JSON.stringify(m)}`);
  };
  for (let x = 0; x < (job === 'spin' ? 200 : 2000); x++) await one(-1 - x); // warm-up (ids apart from the measured ones)
  const before = usage(p.pid);
  const lat = [];
  const t0 = process.hrtime.bigint();
  if (inFlight === 1) {
    for (let x = 0; x < tasks; x++) {
      const t = process.hrtime.bigint();
      check(x, await one(x));
      lat.push(Number(process.hrtime.bigint() - t) / 1000);
    }
  } else {
    let next = 0;
    const lane = async () => {
      while (next < tasks) {
        const x = next++;
        check(x, await one(x));
      }
    };
    await Promise.all(Array.from({ length: inFlight }, lane));
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = usage(p.pid);
  lat.sort((a, b) => a - b);
  p.disconnect(); // the child exits on disconnect (writing its profile)
  await new Promise((r) => p.once('exit', r));
  console.log(JSON.stringify({
    child: child === 'sdk' && args.runner ? `sdk ${args.runner}` : child,
    job,
    tasks,
    inFlight,
    p50_us: lat.length ? +lat[Math.floor(lat.length / 2)].toFixed(1) : null,
    per_sec: Math.round(tasks / secs),
    child_cpu_us: +(((after.cpuMs - before.cpuMs) * 1000) / tasks).toFixed(1),
    child_switches: +((after.switches - before.switches) / tasks).toFixed(2),
    ...(process.env.WORKER_SIDE_THREADS
      ? {
          child_threads_us: Object.fromEntries(
            Object.keys(after.threads).map((k) => [k, +((after.threads[k] - (before.threads[k] || 0)) / 1000 / tasks).toFixed(2)]),
          ),
        }
      : {}),
  }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
