// The dashboard's memory over a long run (issue 14, part 4): a real `offload serve`, a steady
// load of jobs with progress and logs (some failing), the overview, the jobs list and a running
// job's page open in Debian's chromium (playwright-core from tests/browser/node_modules), and
// every minute each page's JS heap (after a forced GC, CDP `Runtime.getHeapUsage`), its DOM
// nodes and event listeners (CDP `Memory.getDOMCounters`) and the daemon's RSS (/proc).
// Prints a table and a verdict per series: bounded or growing (a least-squares slope over
// the second half). Run by ./run, which builds the release binary; see README.md.
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Daemon, repo } from '../../tests/browser/daemon.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(repo, 'tests', 'browser', 'package.json'));
const { chromium } = require('playwright-core');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : fallback;
}
const MINUTES = arg('--minutes', 60);
const RATE = arg('--rate', 3); // jobs submitted per second
const FAIL = arg('--fail', 0.15); // the share of jobs that fail (each gets 2 attempts)
const SAMPLE_MS = arg('--sample-seconds', 60) * 1000;
if (!(MINUTES >= 1 && MINUTES <= 24 * 60)) throw new Error(`--minutes ${MINUTES}: 1..=1440`);
if (!(RATE > 0 && RATE <= 50)) throw new Error(`--rate ${RATE}: (0, 50]`);

const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const statusMb = (pid, field) => {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};
// The daemon's data folder (the SQLite database, its WAL): its page cache follows it.
const dataMb = (dir) => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0) / 1048576;

// --config FILE: an offload.toml for the daemon (e.g. another sqlite_cache_mb).
const configAt = process.argv.indexOf('--config');
const daemonArgs = configAt > 0 ? ['--config', resolve(process.argv[configAt + 1])] : [];
const daemon = await Daemon.start({ jobs: join(here, 'jobs'), args: daemonArgs });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
  headless: true,
});
let stopping = false;
const problems = [];
async function stopAll() {
  stopping = true;
  await browser.close().catch(() => {});
  await daemon.stop();
}
process.on('SIGINT', () => { stopAll().finally(() => process.exit(130)); });
process.on('SIGTERM', () => { stopAll().finally(() => process.exit(143)); });

try {
  console.log(`# offload ${daemon.base}, pid ${daemon.child.pid}; ${MINUTES} min, ${RATE} jobs/s, ${FAIL * 100} % failing; load ${load()}`);
  // The job whose page stays open: runs past the end of the soak.
  const seconds = MINUTES * 60 + 600;
  const longId = await daemon.submit('long', { seconds, lines: 60 }, { timeout_ms: (seconds + 600) * 1000 });
  await daemon.state(longId, ['running']);

  // The load: RATE jobs a second, each 3–12 steps of 50 ms, some failing.
  let submitted = 0;
  let refused = 0;
  const loader = (async () => {
    const every = 1000 / RATE;
    let next = Date.now();
    while (!stopping) {
      next += every;
      const steps = 3 + Math.floor(Math.random() * 10);
      daemon.api('POST', '/v1/jobs', { job: 'work', params: { steps, fail: Math.random() < FAIL }, max_attempts: 2 })
        .then((r) => { if (r.status === 201) submitted++; else refused++; })
        .catch(() => { refused++; });
      await sleep(Math.max(0, next - Date.now()));
    }
  })();

  const pages = [];
  for (const [name, path] of [['overview', '/'], ['jobs', '/ui/jobs'], ['job', `/ui/jobs/${longId}`]]) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(30000);
    const p = { name, page, errors: 0, cdp: null };
    page.on('console', (m) => { if (m.type() === 'error') { p.errors++; problems.push(`${name}: ${m.text()}`); } });
    page.on('pageerror', (e) => { p.errors++; problems.push(`${name}: ${e}`); });
    await page.goto(daemon.base + path);
    await page.locator('#live.on').waitFor();
    p.cdp = await context.newCDPSession(page);
    pages.push(p);
  }

  const rows = [];
  async function sample(minute) {
    const pid = daemon.child.pid;
    const row = {
      minute, load: load(), submitted, refused,
      daemon_rss_mb: statusMb(pid, 'VmRSS'), daemon_anon_mb: statusMb(pid, 'RssAnon'), data_mb: dataMb(daemon.data),
    };
    for (const p of pages) {
      await p.cdp.send('HeapProfiler.collectGarbage');
      const heap = await p.cdp.send('Runtime.getHeapUsage');
      const dom = await p.cdp.send('Memory.getDOMCounters');
      const live = await p.page.locator('#live.on').count();
      row[`${p.name}_heap_mb`] = heap.usedSize / 1048576;
      row[`${p.name}_nodes`] = dom.nodes;
      row[`${p.name}_listeners`] = dom.jsEventListeners;
      row[`${p.name}_live`] = live === 1;
      row[`${p.name}_errors`] = p.errors;
    }
    // SQLite's own heap (its page caches), from the daemon's /metrics.
    const metrics = await fetch(`${daemon.base}/metrics`).then((r) => r.text()).catch(() => '');
    const sqlite = /^offload_sqlite_memory_bytes (\d+)/m.exec(metrics);
    row.sqlite_mb = sqlite ? Number(sqlite[1]) / 1048576 : NaN;
    const progress = await daemon.api('GET', `/v1/jobs/${longId}`);
    row.long_progress = progress.body && progress.body.progress ? progress.body.progress.done : null;
    rows.push(row);
    console.log(JSON.stringify(row));
  }

  const start = Date.now();
  await sample(0);
  for (let m = 1; m <= MINUTES * 60000 / SAMPLE_MS; m++) {
    await sleep(Math.max(0, start + m * SAMPLE_MS - Date.now()));
    await sample(m * SAMPLE_MS / 60000);
  }
  stopping = true;
  await loader;

  // The table and the verdict.
  const series = [
    ['daemon_rss_mb', 'daemon RSS (MB)', 5],
    ['sqlite_mb', 'daemon SQLite heap (MB)', 2],
    ...pages.flatMap((p) => [
      [`${p.name}_heap_mb`, `${p.name} page JS heap (MB)`, 0.5],
      [`${p.name}_nodes`, `${p.name} page DOM nodes`, 200],
      [`${p.name}_listeners`, `${p.name} page listeners`, 50],
    ]),
  ];
  const out = [];
  const cols = ['min', 'load', 'jobs', 'daemon RSS MB', 'of it anon MB', 'SQLite heap MB', 'data folder MB', ...pages.flatMap((p) => [`${p.name} heap MB`, `${p.name} nodes`, `${p.name} listeners`])];
  out.push(`| ${cols.join(' | ')} |`);
  out.push(`|${cols.map(() => '---').join('|')}|`);
  for (const r of rows) {
    out.push(`| ${[Number(r.minute.toFixed(2)), r.load.split(' ')[0], r.submitted, r.daemon_rss_mb.toFixed(1),
      (r.daemon_anon_mb ?? NaN).toFixed(1), (r.sqlite_mb ?? NaN).toFixed(1), (r.data_mb ?? NaN).toFixed(1),
      ...pages.flatMap((p) => [r[`${p.name}_heap_mb`].toFixed(2), r[`${p.name}_nodes`], r[`${p.name}_listeners`]])].join(' | ')} |`);
  }
  out.push('');
  // A series grows when the line fitted over the second half rises by more than 5 % of its
  // median and more than a floor (noise: a GC's leftovers, a table a few rows longer) over
  // that half.
  let growing = 0;
  const half = rows.slice(Math.floor(rows.length / 2));
  for (const [key, label, floor] of series) {
    const xs = half.map((r) => r.minute);
    const ys = half.map((r) => r[key]);
    const n = xs.length;
    const mx = xs.reduce((a, b) => a + b, 0) / n;
    const my = ys.reduce((a, b) => a + b, 0) / n;
    const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
    const slope = sxx > 0 ? xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0) / sxx : 0;
    const span = n > 1 ? xs[n - 1] - xs[0] : 0;
    const rise = slope * span;
    const median = [...ys].sort((a, b) => a - b)[Math.floor(n / 2)];
    const grows = rise > Math.max(floor, 0.05 * median);
    if (grows) growing++;
    out.push(`${grows ? 'GROWING' : 'bounded'}  ${label}: ${ys[0].toFixed(2)} → ${ys[n - 1].toFixed(2)} over the second half, fitted slope ${slope.toFixed(3)}/min (${rise >= 0 ? '+' : ''}${rise.toFixed(2)} over ${span} min; limit ${Math.max(floor, 0.05 * median).toFixed(2)})`);
  }
  const last = rows[rows.length - 1];
  // Context for the daemon's RSS: its anonymous part, and the data folder SQLite caches
  // (`sqlite_cache_mb` a connection), which grows with the jobs kept (`retention_hours`).
  const h0 = half[0];
  if (h0.daemon_anon_mb !== undefined) {
    out.push(`context  daemon anonymous RSS ${h0.daemon_anon_mb.toFixed(1)} → ${last.daemon_anon_mb.toFixed(1)} MB, SQLite heap ${h0.sqlite_mb.toFixed(1)} → ${last.sqlite_mb.toFixed(1)} MB, data folder ${h0.data_mb.toFixed(1)} → ${last.data_mb.toFixed(1)} MB over the second half`);
  }
  out.push('');
  out.push(`jobs submitted ${last.submitted} (refused ${last.refused}); the long job's progress ${last.long_progress}; pages live at the end: ${pages.map((p) => `${p.name} ${last[`${p.name}_live`]}`).join(', ')}; console errors ${problems.length}`);
  for (const p of problems.slice(0, 10)) out.push(`  ${p}`);
  out.push(`verdict: ${growing === 0 && problems.length === 0 ? 'BOUNDED' : growing ? `GROWING (${growing} series)` : 'bounded, with console errors'}`);
  const text = out.join('\n');
  console.log('\n' + text);
  mkdirSync(join(here, 'results'), { recursive: true });
  const file = join(here, 'results', `${new Date().toISOString().replace(/[:.]/g, '-')}.md`);
  writeFileSync(file, text + '\n');
  writeFileSync(file.replace(/\.md$/, '.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  console.log(`# written to ${file}`);
  process.exitCode = growing === 0 && problems.length === 0 ? 0 : 1;
} finally {
  await stopAll();
}
