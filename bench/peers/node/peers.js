#!/usr/bin/env node
// The Node peers of offload's pool benchmark: ee-core 4.x ChildPoolJob, workerpool (process
// mode), piscina (threads) and raw child_process.fork, each with 2 workers, running the same
// workloads as tests/conformance/benches/pool.rs and printing one JSON line per run in the same
// format.
//
//   node peers.js --system ee-core|workerpool|piscina|fork|addon --workload a|b|c
//                 [--tasks N] [--runs R] [--time-limit SECS] [--warmup N]
//                 [--in-flight 16] (fork) [--concurrent 1] (piscina's concurrentTasksPerWorker)
//
// Needs NODE_PATH to hold bench/peers/.deps/node_modules (bench/peers/run sets it).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq > 0) o[a.slice(2, eq)] = a.slice(eq + 1);
    else o[a.slice(2)] = argv[++i];
  }
  return o;
}

const args = parseArgs(process.argv.slice(2));
const system = args.system;
const workload = args.workload;
if (!['ee-core', 'workerpool', 'piscina', 'fork', 'addon'].includes(system) || !['a', 'b', 'c'].includes(workload)) {
  console.error('usage: peers.js --system ee-core|workerpool|piscina|fork|addon --workload a|b|c [--tasks N] [--runs R] [--time-limit SECS]');
  process.exit(2);
}
const WORKERS = 2;
const tasks = Number(args.tasks || (workload === 'c' ? 5000 : 100000));
const runs = Number(args.runs || 1);
const timeLimitMs = Number(args['time-limit'] || 60) * 1000;
// (c): about six seconds of 1 ms tasks, so that V8 has stopped compiling what runs per task
// before the count starts (2,000 tasks still counted part of it); the same in every row.
const warmup = Number(args.warmup || (workload === 'c' ? 12000 : Math.min(1000, Math.max(100, Math.floor(tasks / 100)))));
const forkInFlight = Number(args['in-flight'] || 16);
const piscinaConcurrent = Number(args.concurrent || 1);
// --addon-in-flight N: the addon row submits with a window like fork's (default: all at once).
const addonInFlight = Number(args['addon-in-flight'] || 0);
const task = workload === 'c' ? 'spin' : 'inc';
const plus = workload === 'c' ? 0 : 1;

// ---- CPU accounting from /proc (same as the offload bench) -----------------------------------

function procUsage(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpu = (Number(rest[11]) + Number(rest[12])) / 100;
    let switches = 0;
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        const s = fs.readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
        for (const m of s.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm)) switches += Number(m[1]);
      } catch (_) { /* thread gone */ }
    }
    return { cpu, switches };
  } catch (_) {
    return { cpu: 0, switches: 0 };
  }
}

function usageNow(pids) {
  const self = procUsage('self');
  const u = { supCpu: self.cpu, supSwitches: self.switches, workersCpu: 0, workersSwitches: 0 };
  for (const pid of pids) {
    const w = procUsage(pid);
    u.workersCpu += w.cpu;
    u.workersSwitches += w.switches;
  }
  return u;
}

// ---- the systems: start() -> { submit(i, x) -> Promise<value>, pids(), close(), note } -------

async function startEeCore() {
  // ee-core 4.x outside Electron: its EE_* variables and config/config.{default,prod}.js.
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ee-bench-'));
  const electronDir = path.join(base, 'electron');
  fs.mkdirSync(path.join(electronDir, 'config'), { recursive: true });
  fs.mkdirSync(path.join(base, 'home'), { recursive: true });
  const conf = "module.exports = () => ({ jobs: { messageLog: false } });\n";
  fs.writeFileSync(path.join(electronDir, 'config', 'config.default.js'), conf);
  fs.writeFileSync(path.join(electronDir, 'config', 'config.prod.js'), conf);
  Object.assign(process.env, {
    EE_ENV: 'prod',
    EE_APP_NAME: 'ee-bench',
    EE_APP_VERSION: '1.0.0',
    EE_BASE_DIR: base,
    EE_ELECTRON_DIR: electronDir,
    EE_APP_USER_DATA: path.join(base, 'userdata'),
    EE_EXEC_DIR: base,
    EE_USER_HOME: path.join(base, 'home'),
    EE_IS_PACKAGED: 'false',
  });
  const { ChildPoolJob } = require('ee-core/jobs');
  const pool = new ChildPoolJob();
  await pool.create(WORKERS);
  const pending = new Map();
  pool.on('done', (d) => {
    const resolve = pending.get(d.i);
    if (resolve) {
      pending.delete(d.i);
      resolve(d.v);
    }
  });
  const jobPath = path.join(__dirname, 'ee-jobs', `${task}.js`);
  let next = 0;
  return {
    note: 'ChildPoolJob, pool of 2, polling',
    submit(x) {
      const i = next++;
      return new Promise((resolve) => {
        pending.set(i, resolve);
        pool.run(jobPath, { i, x });
      });
    },
    pids: () => pool.getPids().map(Number),
    close() {
      for (const pid of pool.getPids()) {
        try { process.kill(Number(pid), 'SIGKILL'); } catch (_) { /* gone */ }
      }
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}

async function startWorkerpool() {
  const workerpool = require('workerpool');
  const pool = workerpool.pool(path.join(__dirname, 'workerpool-worker.js'), {
    workerType: 'process',
    minWorkers: WORKERS,
    maxWorkers: WORKERS,
  });
  return {
    note: "workerType 'process', 2 workers",
    submit: (x) => pool.exec(task, [x]),
    pids: () => pool.workers.map((w) => w.worker && w.worker.pid).filter(Boolean),
    close: () => pool.terminate(true),
  };
}

async function startPiscina() {
  const { Piscina } = require('piscina');
  const pool = new Piscina({
    filename: path.join(__dirname, 'piscina-worker.js'),
    minThreads: WORKERS,
    maxThreads: WORKERS,
    concurrentTasksPerWorker: piscinaConcurrent,
    idleTimeout: 60000,
  });
  return {
    note: `threads, not processes; 2 threads, concurrentTasksPerWorker ${piscinaConcurrent}`,
    submit: (x) => pool.run(x, { name: task }),
    pids: () => [], // threads: their CPU is this process's
    close: () => pool.destroy(),
  };
}

async function startFork() {
  const { fork } = require('child_process');
  const children = [];
  const pending = new Map();
  for (let k = 0; k < WORKERS; k++) {
    const child = fork(path.join(__dirname, 'fork-child.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.on('message', (m) => {
      const resolve = pending.get(m.i);
      pending.delete(m.i);
      resolve(m.v);
    });
    children.push(child);
  }
  let next = 0;
  const t = task === 'spin' ? 's' : 'i';
  return {
    note: `2 children, round robin, at most ${forkInFlight} in flight`,
    inFlight: forkInFlight,
    submit(x) {
      const i = next++;
      return new Promise((resolve) => {
        pending.set(i, resolve);
        children[i % WORKERS].send({ i, t, x });
      });
    },
    pids: () => children.map((c) => c.pid),
    close() {
      for (const c of children) c.kill('SIGKILL');
    },
  };
}

// offload from Node: bindings/node's ChildPool (the native addon, built by `npm run build` in
// bindings/node) with Node workers running jobs/inc.js and jobs/spin.js, the same per-worker
// concurrency as the offload rows (64 for a, 1 for b, 2 for c). Per-job events off: a task is
// one napi call and one JSON result.
async function startAddon() {
  // OFFLOAD_BENCH_ADDON: another copy of bindings/node (the `addon-before` row of `run`).
  const dir = process.env.OFFLOAD_BENCH_ADDON || path.join(__dirname, '..', '..', '..', 'bindings', 'node');
  const { ChildPool } = require(dir);
  const concurrency = workload === 'a' ? 64 : workload === 'b' ? 1 : 2;
  const pool = await ChildPool.start({
    jobs: path.join(__dirname, '..', 'jobs'),
    min: WORKERS,
    max: WORKERS,
    concurrency,
    queueBound: tasks + 1000,
  });
  return {
    note: `bindings/node ChildPool, 2 Node workers, concurrency ${concurrency}${addonInFlight ? `, at most ${addonInFlight} in flight` : ''}`,
    inFlight: addonInFlight || Infinity,
    submit: (x) => pool.run(task, { x }, { events: false }),
    pids: () => pool.pids(),
    close: () => pool.kill(),
  };
}

const starters = { 'ee-core': startEeCore, workerpool: startWorkerpool, piscina: startPiscina, fork: startFork, addon: startAddon };

// ---- workloads ---------------------------------------------------------------------------------

// Submits n tasks, at most `inFlight` outstanding (Infinity: all at once); checks every value.
async function burst(sys, n, inFlight, deadline) {
  let errors = 0;
  let firstError = null;
  let done = 0;
  const check = (x, v) => {
    if (v !== x + plus) {
      errors++;
      if (firstError === null) firstError = `expected ${x + plus}, got ${JSON.stringify(v)}`;
    }
    done++;
  };
  if (!Number.isFinite(inFlight)) {
    const all = [];
    for (let x = 0; x < n; x++) all.push(sys.submit(x).then((v) => check(x, v), (e) => check(x, String(e))));
    let timer;
    const timedOut = await Promise.race([
      Promise.all(all).then(() => false),
      new Promise((r) => { timer = setTimeout(() => r(true), Math.max(0, deadline - Date.now())); }),
    ]);
    clearTimeout(timer);
    return { done, errors, firstError, timedOut };
  }
  let nextX = 0;
  let timedOut = false;
  await new Promise((resolve) => {
    let outstanding = 0;
    const pump = () => {
      while (outstanding < inFlight && nextX < n) {
        const x = nextX++;
        outstanding++;
        sys.submit(x).then((v) => {
          check(x, v);
          outstanding--;
          if (done === n) resolve();
          else if (done % 1024 === 0 && Date.now() > deadline) { timedOut = true; resolve(); }
          else pump();
        });
      }
    };
    pump();
  });
  return { done, errors, firstError, timedOut };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length, Math.max(1, Math.ceil(sorted.length * p))) - 1;
  return sorted[i];
}

async function oneRun(run) {
  const t0 = process.hrtime.bigint();
  const sys = await starters[system]();
  const inFlight = sys.inFlight || Infinity;
  // Warm-up, not counted: also the readiness check for systems without a handshake.
  const warm = await burst(sys, warmup, inFlight, Date.now() + 60000);
  const startMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (warm.errors || warm.timedOut) throw new Error(`warm-up failed: ${warm.firstError || 'timed out'}`);
  const pids = sys.pids();
  const before = usageNow(pids);
  const started = process.hrtime.bigint();
  const deadline = Date.now() + timeLimitMs;
  let res;
  let lat = [];
  if (workload === 'b') {
    let errors = 0;
    let firstError = null;
    let done = 0;
    let timedOut = false;
    for (let x = 0; x < tasks; x++) {
      const t = process.hrtime.bigint();
      const v = await sys.submit(x);
      lat.push(Number(process.hrtime.bigint() - t) / 1000);
      if (v !== x + 1) {
        errors++;
        if (firstError === null) firstError = `expected ${x + 1}, got ${JSON.stringify(v)}`;
      }
      done++;
      if (done % 256 === 0 && Date.now() > deadline) { timedOut = true; break; }
    }
    res = { done, errors, firstError, timedOut };
  } else {
    res = await burst(sys, tasks, inFlight, deadline);
  }
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  const after = usageNow(pids);
  await sys.close();
  lat.sort((a, b) => a - b);
  const n = Math.max(1, res.done);
  return {
    system,
    workload,
    run,
    tasks: res.done,
    secs,
    per_sec: res.done / secs,
    p50_us: percentile(lat, 0.5),
    p99_us: percentile(lat, 0.99),
    workers: WORKERS,
    note: sys.note,
    start_ms: startMs,
    errors: res.errors,
    first_error: res.firstError,
    timed_out: res.timedOut,
    sup_cpu_us_per_task: ((after.supCpu - before.supCpu) * 1e6) / n,
    workers_cpu_us_per_task: ((after.workersCpu - before.workersCpu) * 1e6) / n,
    sup_switches_per_task: (after.supSwitches - before.supSwitches) / n,
    workers_switches_per_task: (after.workersSwitches - before.workersSwitches) / n,
  };
}

(async () => {
  // One system per process: ee-core's module state (config, logger) is process-wide.
  let failed = false;
  for (let run = 1; run <= runs; run++) {
    try {
      console.log(JSON.stringify(await oneRun(run)));
    } catch (e) {
      failed = true;
      console.log(JSON.stringify({ system, workload, run, error: String(e && e.stack || e) }));
    }
  }
  process.exit(failed ? 1 : 0);
})();
