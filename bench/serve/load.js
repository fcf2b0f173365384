#!/usr/bin/env node
'use strict';
// The load generator of bench/serve: drives `offload serve` over HTTP (keep-alive connections)
// or BullMQ over Redis, and prints ONE JSON line with what it measured (bench/serve/run collects
// them; table.py prints the table).
//
//   node load.js <system> <workload> [options]
//
//   system    offload (--url http://127.0.0.1:P) | bullmq (--redis P [--queue NAME])
//   workload  submit-single  N jobs, one per request, --conns K in flight (offload: delayed by an
//                            hour, so nothing runs while they are submitted; bullmq: no worker)
//             submit-batch   N jobs in batches of --batch B (POST /v1/jobs/batch / addBulk),
//                            --conns K batches in flight
//             e2e            N no-op jobs submitted (--mode batch|single), timed until the store
//                            says all of them succeeded / completed
//             e2e-single     e2e with --mode single
//             paced          --rate R jobs/s for --seconds S, one per request, then waits for
//                            them and reads each job's queue wait (created → first attempt start)
//             submit-wrk     offload only: submit-single driven by `wrk` (C, one event-loop
//                            thread per --threads, --conns keep-alive connections) for --seconds
//                            S instead of this Node client, so the client is not the bottleneck
//                            (wrk/submit.lua: the same delayed job every time); wrk's CPU (bash
//                            `times` of its children) is counted as the load generator's
//
//   --limit S     hard time bound of the workload (default 60 s): a workload still running is
//                 stopped and reported with "timed_out": true and the rate of what finished
//   --watch a=PID,b=PID   CPU time (utime+stime from /proc) of these processes, their threads
//                 (grouped by thread name) and their descendants over the measured window
//   --wait-sample N   jobs whose queue wait is read after an e2e run (default 1000, 0 = none)
//
// Only 127.0.0.1 is ever contacted.

const http = require('node:http');
const fs = require('node:fs');

// ---- arguments ---------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const [system, workload] = argv;
const opt = {
  url: null,
  redis: null,
  queue: 'bench',
  job: 'noop',
  pool: 'bench',
  count: 10000,
  conns: 64,
  batch: 100,
  mode: 'batch',
  rate: 1000,
  seconds: 5,
  limit: 60,
  watch: '',
  waitSample: 1000,
  label: null,
  threads: 1,
};
for (let i = 2; i < argv.length; i++) {
  const k = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  const v = argv[++i];
  if (!(k in opt)) die(`unknown option ${argv[i - 1]}`);
  opt[k] = typeof opt[k] === 'number' ? Number(v) : v;
}
if (!['offload', 'bullmq'].includes(system)) die('system: offload or bullmq');
if (!['submit-single', 'submit-batch', 'e2e', 'e2e-single', 'paced', 'submit-wrk'].includes(workload)) die(`workload? ${workload}`);
if (workload === 'submit-wrk' && system !== 'offload') die('submit-wrk drives offload only (HTTP)');
// e2e-single: the end-to-end workload with one job per request.
if (workload === 'e2e-single') opt.mode = 'single';

function die(msg) {
  process.stderr.write(`load.js: ${msg}\n`);
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

function stats(values) {
  const s = Float64Array.from(values).sort();
  return { n: s.length, p50: quantile(s, 0.5), p99: quantile(s, 0.99), max: s.length ? s[s.length - 1] : null };
}

// ---- CPU accounting from /proc -----------------------------------------------------------------

const TICK = Number(process.env.CLK_TCK || 100);

function statOf(file) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const f = text.slice(close + 2).split(' ');
    // f[0] is field 3 (state): utime is field 14, stime 15, ppid 4.
    return { comm, ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / TICK };
  } catch {
    return null;
  }
}

function allProcs() {
  const out = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = statOf(`/proc/${d}/stat`);
    if (s) out.set(Number(d), s);
  }
  return out;
}

function descendants(root, procs) {
  const kids = new Map();
  for (const [pid, s] of procs) {
    if (!kids.has(s.ppid)) kids.set(s.ppid, []);
    kids.get(s.ppid).push(pid);
  }
  const out = [];
  const todo = [...(kids.get(root) || [])];
  while (todo.length) {
    const p = todo.pop();
    out.push(p);
    todo.push(...(kids.get(p) || []));
  }
  return out;
}

/** CPU seconds the whole machine spent busy (all processes, all cores), from /proc/stat. */
function machineBusy() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / TICK;
}

/** A snapshot: per watched process, its threads' CPU by thread name and its descendants'. */
function cpuSnapshot(watch) {
  const procs = allProcs();
  const snap = {};
  for (const [label, pid] of watch) {
    const threads = {};
    let tasks = [];
    try {
      tasks = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      // gone
    }
    for (const t of tasks) {
      const s = statOf(`/proc/${pid}/task/${t}/stat`);
      if (s) threads[`${t}:${s.comm}`] = s.cpu;
    }
    const desc = {};
    for (const d of descendants(pid, procs)) desc[d] = { comm: procs.get(d).comm, cpu: procs.get(d).cpu };
    snap[label] = { threads, desc };
  }
  snap.self = process.cpuUsage();
  snap.machine = machineBusy();
  return snap;
}

/** CPU seconds spent between two snapshots, per watched process (by thread name) and children. */
function cpuDelta(a, b, watch) {
  const out = {};
  for (const [label] of watch) {
    const byName = {};
    let total = 0;
    for (const [k, v] of Object.entries(b[label].threads)) {
      const name = k.slice(k.indexOf(':') + 1).replace(/[-\d]+$/, '') || k;
      const d = v - (a[label].threads[k] || 0);
      byName[name] = (byName[name] || 0) + d;
      total += d;
    }
    let children = 0;
    const kids = {};
    for (const [pid, s] of Object.entries(b[label].desc)) {
      const before = a[label].desc[pid];
      const d = s.cpu - (before ? before.cpu : 0);
      children += d;
      if (d > 0.005) kids[`${pid}:${s.comm}`] = round(d, 3);
    }
    for (const k of Object.keys(byName)) byName[k] = round(byName[k], 3);
    out[label] = { total: round(total, 3), threads: byName, children: round(children, 3), per_child: kids };
  }
  const us = b.self.user - a.self.user + (b.self.system - a.self.system);
  out.loadgen = { total: round(us / 1e6, 3) };
  // What everything else on the machine (other users' builds, the kernel) used meanwhile.
  let ours = out.loadgen.total;
  for (const [label] of watch) ours += out[label].total + out[label].children;
  const busy = b.machine - a.machine;
  out.machine = { busy: round(busy, 3), others: round(Math.max(0, busy - ours), 3) };
  return out;
}

function round(x, d) {
  const m = 10 ** d;
  return Math.round(x * m) / m;
}

const watch = opt.watch
  ? opt.watch.split(',').filter(Boolean).map((kv) => {
      const [k, v] = kv.split('=');
      return [k, Number(v)];
    })
  : [];

// ---- offload over HTTP -------------------------------------------------------------------------

let agent = null;
let base = null;

function request(method, p, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        method,
        path: p,
        headers: data
          ? { 'content-type': 'application/json', 'content-length': data.length }
          : {},
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode, text });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

async function getJson(p) {
  const r = await request('GET', p);
  if (r.status !== 200) throw new Error(`GET ${p}: ${r.status} ${r.text.slice(0, 200)}`);
  return JSON.parse(r.text);
}

/** `offload_jobs{pool,state}` of /metrics (the store's counts). */
async function offloadCounts() {
  const r = await request('GET', '/metrics');
  const counts = {};
  const re = new RegExp(`^offload_jobs\\{pool="${opt.pool}",state="([a-z]+)"\\} (\\d+)`, 'gm');
  for (const m of r.text.matchAll(re)) counts[m[1]] = Number(m[2]);
  return counts;
}

function offloadJob(i, delayed) {
  const j = { job: opt.job, params: { n: i } };
  if (delayed) j.delay_ms = 3_600_000;
  return j;
}

const offload = {
  async init() {
    base = new URL(opt.url);
    if (base.hostname !== '127.0.0.1') die('only 127.0.0.1');
    agent = new http.Agent({ keepAlive: true, maxSockets: opt.conns, maxFreeSockets: opt.conns });
  },
  async submitOne(i, delayed) {
    const r = await request('POST', '/v1/jobs', offloadJob(i, delayed));
    if (r.status !== 201) throw new Error(`POST /v1/jobs: ${r.status} ${r.text.slice(0, 300)}`);
    return JSON.parse(r.text).id;
  },
  async submitMany(from, n, delayed) {
    const jobs = [];
    for (let i = 0; i < n; i++) jobs.push(offloadJob(from + i, delayed));
    const r = await request('POST', '/v1/jobs/batch', { jobs });
    if (r.status !== 201) throw new Error(`POST /v1/jobs/batch: ${r.status} ${r.text.slice(0, 300)}`);
    return JSON.parse(r.text).jobs.map((j) => j.id);
  },
  async finished() {
    const c = await offloadCounts();
    return { ok: c.succeeded || 0, bad: (c.dead || 0) + (c.failed || 0) + (c.cancelled || 0) };
  },
  /** Queue wait (ms) of these jobs: their first attempt's start − created_at. */
  async waits(ids) {
    const out = [];
    let next = 0;
    const one = async () => {
      while (next < ids.length) {
        const id = ids[next++];
        const j = await getJson(`/v1/jobs/${id}`);
        if (j.attempts && j.attempts.length) out.push(j.attempts[0].started_at - j.created_at);
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, opt.conns) }, one));
    return out;
  },
  async close() {
    agent.destroy();
  },
};

// ---- BullMQ over Redis -------------------------------------------------------------------------

let queue = null;

const bullmq = {
  async init() {
    const { Queue } = require('bullmq');
    queue = new Queue(opt.queue, { connection: { host: '127.0.0.1', port: Number(opt.redis) } });
    await queue.waitUntilReady();
  },
  async submitOne(i) {
    const job = await queue.add('noop', { n: i });
    return job.id;
  },
  async submitMany(from, n) {
    const jobs = [];
    for (let i = 0; i < n; i++) jobs.push({ name: 'noop', data: { n: from + i } });
    const done = await queue.addBulk(jobs);
    return done.map((j) => j.id);
  },
  async finished() {
    const c = await queue.getJobCounts('completed', 'failed');
    return { ok: c.completed || 0, bad: c.failed || 0 };
  },
  /** Queue wait (ms): processedOn (moved to active) − timestamp (added). */
  async waits(ids) {
    const { Job } = require('bullmq');
    const out = [];
    for (let i = 0; i < ids.length; i += 200) {
      const jobs = await Promise.all(ids.slice(i, i + 200).map((id) => Job.fromId(queue, id)));
      for (const j of jobs) if (j && j.processedOn) out.push(j.processedOn - j.timestamp);
    }
    return out;
  },
  async close() {
    await queue.close();
  },
};

// ---- wrk ---------------------------------------------------------------------------------------

/** Runs wrk against offload for --seconds; its counts, and its CPU added to the generator's. */
function runWrk() {
  const { spawnSync } = require('node:child_process');
  const script = require('node:path').join(__dirname, 'wrk', 'submit.lua');
  const args = ['-t', String(opt.threads), '-c', String(opt.conns), '-d', `${opt.seconds}s`,
    '--timeout', '10s', '-s', script, opt.url];
  const before = cpuSnapshot(watch);
  const t = now();
  // bash's `times` prints its children's (wrk's) user and system CPU time.
  const res = spawnSync('bash', ['-c', 'wrk "$@"; s=$?; times >&2; exit $s', 'wrk', ...args], {
    encoding: 'utf8',
    timeout: (opt.limit + 30) * 1000,
  });
  const secs = (now() - t) / 1000;
  const cpu = cpuDelta(before, cpuSnapshot(watch), watch);
  const line = (res.stdout || '').split('\n').find((l) => l.startsWith('WRK '));
  if (res.status !== 0 || !line) {
    throw new Error(`wrk failed (${res.status}): ${(res.stderr || '').slice(0, 300)} ${(res.stdout || '').slice(0, 300)}`);
  }
  const w = JSON.parse(line.slice(4));
  const times = (res.stderr || '').trim().split('\n').filter((l) => /^\d+m[\d.]+s \d+m[\d.]+s$/.test(l));
  const sec = (x) => { const [m, s] = x.slice(0, -1).split('m'); return Number(m) * 60 + Number(s); };
  const [u, s] = times.length ? times[times.length - 1].split(' ').map(sec) : [NaN, NaN];
  cpu.loadgen.node = cpu.loadgen.total;
  cpu.loadgen.wrk = round(u + s, 3);
  cpu.loadgen.total = round(cpu.loadgen.total + u + s, 3);
  cpu.machine.others = round(Math.max(0, cpu.machine.others - (u + s)), 3);
  const ok = w.requests - w.status_errors;
  const errors = w.status_errors + w.connect_errors + w.read_errors + w.write_errors + w.timeouts;
  return {
    cpu,
    client: 'wrk',
    threads: opt.threads,
    jobs: ok,
    seconds: round(w.duration_us / 1e6, 3),
    wall_seconds: round(secs, 3),
    per_sec: ok / (w.duration_us / 1e6),
    errors,
    first_error: errors ? `wrk: ${JSON.stringify(w)}` : null,
    timed_out: false,
    req_p50_ms: round(w.p50_us / 1000, 3),
    req_p99_ms: round(w.p99_us / 1000, 3),
  };
}

// ---- workloads ---------------------------------------------------------------------------------

const sys = system === 'offload' ? offload : bullmq;

/** Runs `n` units of work through `conns` concurrent loops; unit(i) returns ids. */
async function closedLoop(n, conns, unit, deadline, lat) {
  let next = 0;
  let errors = 0;
  let firstError = null;
  const ids = [];
  const loop = async () => {
    while (next < n && now() < deadline) {
      const i = next++;
      const t = now();
      try {
        const got = await unit(i);
        if (lat) lat.push(now() - t);
        for (const id of got) ids.push(id);
      } catch (e) {
        errors++;
        if (!firstError) firstError = String(e.message || e);
      }
    }
  };
  await Promise.all(Array.from({ length: conns }, loop));
  return { ids, errors, firstError, timedOut: next < n };
}

async function main() {
  await sys.init();
  const r = { system, workload, label: opt.label, conns: opt.conns };
  const t0 = now();
  const deadline = t0 + opt.limit * 1000;
  let before = cpuSnapshot(watch);
  let tStart = now();

  if (workload === 'submit-wrk') {
    Object.assign(r, runWrk());
  } else if (workload === 'submit-single' || workload === 'submit-batch') {
    const lat = [];
    let res;
    if (workload === 'submit-single') {
      res = await closedLoop(opt.count, opt.conns, async (i) => [await sys.submitOne(i, true)], deadline, lat);
    } else {
      const batches = Math.ceil(opt.count / opt.batch);
      r.batch = opt.batch;
      res = await closedLoop(batches, opt.conns, (b) => sys.submitMany(b * opt.batch, Math.min(opt.batch, opt.count - b * opt.batch), true), deadline, lat);
    }
    const secs = (now() - tStart) / 1000;
    r.cpu = cpuDelta(before, cpuSnapshot(watch), watch);
    Object.assign(r, {
      jobs: res.ids.length,
      seconds: round(secs, 3),
      per_sec: res.ids.length / secs,
      errors: res.errors,
      first_error: res.firstError,
      timed_out: res.timedOut,
      req_p50_ms: round(stats(lat).p50, 3),
      req_p99_ms: round(stats(lat).p99, 3),
    });
  } else if (workload === 'e2e' || workload === 'e2e-single') {
    const base0 = await sys.finished();
    before = cpuSnapshot(watch);
    tStart = now();
    r.mode = opt.mode;
    let submitted = null;
    let submitDone = false;
    const submitting = (async () => {
      const res =
        opt.mode === 'single'
          ? await closedLoop(opt.count, opt.conns, async (i) => [await sys.submitOne(i, false)], deadline)
          : await closedLoop(Math.ceil(opt.count / opt.batch), opt.conns, (b) => sys.submitMany(b * opt.batch, Math.min(opt.batch, opt.count - b * opt.batch), false), deadline);
      submitted = res;
      r.submit_seconds = round((now() - tStart) / 1000, 3);
      submitDone = true;
    })();
    let done = { ok: 0, bad: 0 };
    let polls = 0;
    while (now() < deadline) {
      const f = await sys.finished();
      polls++;
      done = { ok: f.ok - base0.ok, bad: f.bad - base0.bad };
      if (submitDone && done.ok + done.bad >= submitted.ids.length) break;
      await sleep(25);
    }
    const secs = (now() - tStart) / 1000;
    r.cpu = cpuDelta(before, cpuSnapshot(watch), watch);
    await Promise.race([submitting, sleep(5000)]);
    Object.assign(r, {
      jobs: opt.count,
      submitted: submitted ? submitted.ids.length : null,
      succeeded: done.ok,
      failed: done.bad,
      seconds: round(secs, 3),
      per_sec: done.ok / secs,
      errors: (submitted ? submitted.errors : 0) + done.bad,
      first_error: submitted ? submitted.firstError : null,
      timed_out: !submitted || done.ok + done.bad < submitted.ids.length,
      polls,
    });
    if (submitted && opt.waitSample > 0 && submitted.ids.length) {
      const ids = submitted.ids;
      const step = Math.max(1, Math.floor(ids.length / opt.waitSample));
      const sample = [];
      for (let i = 0; i < ids.length; i += step) sample.push(ids[i]);
      const w = stats(await sys.waits(sample));
      Object.assign(r, { wait_n: w.n, wait_p50_ms: w.p50, wait_p99_ms: w.p99, wait_max_ms: w.max });
    }
  } else if (workload === 'paced') {
    // Open loop: the i-th job is sent at tStart + i/rate, whatever happened to the others.
    const n = Math.round(opt.rate * opt.seconds);
    const base0 = await sys.finished();
    before = cpuSnapshot(watch);
    tStart = now();
    const ids = [];
    const pending = [];
    let errors = 0;
    let firstError = null;
    let sent = 0;
    let late = 0;
    while (sent < n && now() < deadline) {
      const due = Math.min(n, Math.floor(((now() - tStart) / 1000) * opt.rate) + 1);
      if (due - sent > opt.rate / 100) late++;
      for (; sent < due; sent++) {
        pending.push(
          sys.submitOne(sent, false).then(
            (id) => ids.push(id),
            (e) => {
              errors++;
              if (!firstError) firstError = String(e.message || e);
            },
          ),
        );
      }
      await sleep(1);
    }
    r.send_seconds = round((now() - tStart) / 1000, 3);
    await Promise.all(pending);
    let done = { ok: 0, bad: 0 };
    while (now() < deadline) {
      const f = await sys.finished();
      done = { ok: f.ok - base0.ok, bad: f.bad - base0.bad };
      if (done.ok + done.bad >= ids.length) break;
      await sleep(25);
    }
    const secs = (now() - tStart) / 1000;
    r.cpu = cpuDelta(before, cpuSnapshot(watch), watch);
    const w = stats(await sys.waits(ids));
    Object.assign(r, {
      rate: opt.rate,
      jobs: ids.length,
      succeeded: done.ok,
      seconds: round(secs, 3),
      per_sec: done.ok / secs,
      errors: errors + done.bad,
      first_error: firstError,
      timed_out: done.ok + done.bad < n,
      late_ticks: late,
      wait_n: w.n,
      wait_p50_ms: w.p50,
      wait_p99_ms: w.p99,
      wait_max_ms: w.max,
    });
  }
  await sys.close();
  process.stdout.write(`${JSON.stringify(r)}\n`);
  process.exit(0);
}

main().catch((e) => {
  process.stdout.write(`${JSON.stringify({ system, workload, label: opt.label, error: String((e && e.stack) || e).slice(0, 500) })}\n`);
  process.exit(1);
});
