'use strict';
// (b) through the addon, thread by thread: one round trip at a time (`pool.run(..., {events:
// false})`, a pool of one worker, concurrency 1), then each thread's CPU time (schedstat: exact)
// and context switches per round trip, in the Node host (its JavaScript thread `node`, the
// addon's tokio thread `offload-node`, …) and in the worker. Shows where a round trip's
// wake-ups and CPU go; `worker-side.js` measures the worker alone.
//
//   node addon-threads.js [--tasks N] [--program <Rust worker>]   (default: the Node SDK worker)
//   OFFLOAD_BENCH_ADDON=<copy of bindings/node>: another build of the addon
const fs = require('node:fs');
const path = require('node:path');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const tasks = Number(args.tasks || 20000);
const dir = process.env.OFFLOAD_BENCH_ADDON || path.join(__dirname, '..', '..', '..', 'bindings', 'node');
const { ChildPool } = require(dir);

function thread(pid, tid) {
  const base = `/proc/${pid}/task/${tid}`;
  const status = fs.readFileSync(`${base}/status`, 'utf8');
  const get = (k) => Number(new RegExp(`\\n${k}:\\s+(\\d+)`).exec(status)[1]);
  return {
    name: fs.readFileSync(`${base}/comm`, 'utf8').trim(),
    ns: Number(fs.readFileSync(`${base}/schedstat`, 'utf8').split(' ')[0]),
    switches: get('voluntary_ctxt_switches') + get('nonvoluntary_ctxt_switches'),
  };
}

function threads(pid) {
  const out = new Map();
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) out.set(t, thread(pid, t));
  return out;
}

/** Per round trip, by thread name (threads of one name summed), the busy ones only. */
function diff(before, after) {
  const by = new Map();
  for (const [t, a] of after) {
    const b = before.get(t);
    if (!b) continue;
    const row = by.get(a.name) || { cpu_us: 0, switches: 0 };
    row.cpu_us += (a.ns - b.ns) / 1000 / tasks;
    row.switches += (a.switches - b.switches) / tasks;
    by.set(a.name, row);
  }
  const out = {};
  for (const [name, r] of by) {
    if (r.cpu_us >= 0.5 || r.switches >= 0.05) out[name] = { cpu_us: +r.cpu_us.toFixed(1), switches: +r.switches.toFixed(2) };
  }
  return out;
}

async function main() {
  const opts = { jobs: path.join(__dirname, '..', 'jobs'), min: 1, max: 1 };
  if (args.program) opts.program = path.resolve(args.program);
  const pool = await ChildPool.start(opts);
  for (let x = 0; x < 2000; x++) await pool.run('inc', { x }, { events: false }); // warm-up
  const worker = pool.pids()[0];
  const h0 = threads(process.pid);
  const w0 = threads(worker);
  const lat = [];
  for (let x = 0; x < tasks; x++) {
    const t = process.hrtime.bigint();
    const v = await pool.run('inc', { x }, { events: false });
    lat.push(Number(process.hrtime.bigint() - t) / 1000);
    if (v !== x + 1) throw new Error(`bad answer ${JSON.stringify(v)}`);
  }
  const h1 = threads(process.pid);
  const w1 = threads(worker);
  await pool.kill();
  lat.sort((a, b) => a - b);
  console.log(JSON.stringify({
    worker: args.program ? 'rust' : 'node',
    tasks,
    p50_us: +lat[lat.length >> 1].toFixed(1),
    host: diff(h0, h1),
    workerThreads: diff(w0, w1),
    load: fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0],
  }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
