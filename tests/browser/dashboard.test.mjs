// The dashboard in a real browser: Debian's chromium driven by playwright-core, against a real
// `offload serve` (daemon.mjs). Screenshots of every page go to $DASH_SCREENSHOTS (default: a
// folder under the system's temp dir, printed at the start).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { Daemon, until } from './daemon.mjs';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const shots = process.env.DASH_SCREENSHOTS || join(tmpdir(), 'offload-dashboard-screens');
mkdirSync(shots, { recursive: true });
console.log(`# screenshots: ${shots}`);

const WAIT = 20000; // every browser wait is bounded by this
let browser;
let daemon;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
    headless: true,
  });
  daemon = await Daemon.start();
});

after(async () => {
  if (browser) await browser.close();
  if (daemon) await daemon.stop();
});

/** A fresh page that records console errors and uncaught exceptions. */
async function open(opts = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...opts });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.errors = [];
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(m.text()); });
  page.on('pageerror', (e) => page.errors.push(String(e)));
  return page;
}

/** axe-core's serious and critical violations on the page. */
async function axe(page) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
}

async function live(page) {
  await page.locator('#live.on').waitFor({ timeout: WAIT });
}

test('every page loads without a console error, passes axe, and is screenshotted', async () => {
  const done = await daemon.submit('hello', { name: 'dashboard' });
  await daemon.state(done, ['succeeded']);
  const dead = await daemon.submit('fails', { step: 2 }, { max_attempts: 1 });
  await daemon.state(dead, ['dead']);
  await daemon.api('POST', '/v1/cron', { name: 'nightly-report', cron: '0 3 * * *', job: 'hello' });
  // The charts read the persisted history, which the daemon adds to every [history] flush_ms.
  const stats = async (w = 'hour') => (await fetch(daemon.base + '/ui/stats.json?window=' + w)).json();
  for (const n of ['a', 'b', 'c']) await daemon.state(await daemon.submit('hello', { name: n }), ['succeeded']);
  await until('a point on the throughput chart', async () => (await stats()).succeeded.some((v) => v > 0), 30000);
  const day = await stats('day');
  assert.equal(day.t.length, 1440, 'a day of minutes');
  assert.ok(day.succeeded.some((v) => v > 0), 'the last day holds the jobs of the last hour');
  const pages = [
    ['overview', '/'],
    ['jobs', '/ui/jobs'],
    ['job', `/ui/jobs/${dead}`],
    ['job-succeeded', `/ui/jobs/${done}`],
    ['dead', '/ui/dead'],
    ['schedules', '/ui/schedules'],
    ['pools', '/ui/pools'],
  ];
  for (const scheme of ['light', 'dark']) {
    for (const [name, path] of pages) {
      const page = await open({ colorScheme: scheme });
      const res = await page.goto(daemon.base + path);
      assert.equal(res.status(), 200, `${path}`);
      await live(page);
      if (name === 'overview') {
        await page.locator('[data-chart] .uplot').first().waitFor();
        // The nodes table: this node, active.
        await page.locator('#nodes tbody tr').filter({ hasText: 'active' }).first().waitFor();
        // The window buttons switch the charts to the last day and back.
        await page.locator('button[data-window="day"]').click();
        await page.locator('button[data-window="day"][aria-pressed="true"]').waitFor();
        await page.locator('button[data-window="hour"]').click();
        await page.locator('button[data-window="hour"][aria-pressed="true"]').waitFor();
      }
      assert.deepEqual(page.errors, [], `console errors on ${path}`);
      assert.deepEqual(await axe(page), [], `axe on ${path} (${scheme})`);
      await page.screenshot({ path: join(shots, `${name}-${scheme}.png`), fullPage: true });
      await page.context().close();
    }
  }
  // A narrow window: the navigation and tables still fit (no horizontal scroll of the page).
  const narrow = await open({ viewport: { width: 390, height: 844 } });
  await narrow.goto(daemon.base + '/ui/jobs');
  const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page scrolls sideways by ${overflow}px on a narrow window`);
  await narrow.screenshot({ path: join(shots, 'jobs-narrow.png'), fullPage: true });
  await narrow.context().close();
});

test('an unknown job or page shows a clear not-found page', async () => {
  const page = await open();
  for (const path of ['/ui/jobs/01a23f4e-0000-7000-8000-000000000000', '/ui/jobs/not-an-id', '/ui/nowhere']) {
    const res = await page.goto(daemon.base + path);
    assert.equal(res.status(), 404, path);
    await page.getByRole('heading', { name: 'Not found' }).waitFor();
  }
  assert.deepEqual(await axe(page), []);
  await page.screenshot({ path: join(shots, 'not-found-light.png') });
  await page.context().close();
});

test('a job submitted through the API appears without reload and its progress bar moves', async () => {
  const page = await open();
  await page.goto(daemon.base + '/ui/jobs');
  await live(page);
  const marker = await page.evaluate(() => { window.__noReload = true; return true; });
  assert.ok(marker);
  const id = await daemon.submit('hello', { name: 'live', steps: 120 });
  const bar = page.locator(`tr[data-job="${id}"] progress[data-progress="${id}"]`);
  await bar.waitFor();
  const seen = new Set();
  await until('the progress bar to move through several values', async () => {
    const v = await page.locator(`progress[data-progress="${id}"]`).first().evaluate((el) => el.value).catch(() => null);
    if (v !== null) seen.add(v);
    return [...seen].filter((x) => x > 0 && x < 100).length >= 2;
  }, WAIT);
  await daemon.state(id, ['succeeded']);
  await page.locator(`tr[data-job="${id}"] .badge.st-succeeded`).waitFor();
  // Under a burst, the page keeps one page of rows (bounded DOM), the newest on top.
  const burst = Array.from({ length: 200 }, (_, i) => ({ job: 'hello', params: { name: `b${i}`, steps: 1 } }));
  const r = await daemon.api('POST', '/v1/jobs/batch', { jobs: burst });
  assert.equal(r.status, 201);
  const newest = r.body.jobs[r.body.jobs.length - 1].id;
  await page.locator(`tr[data-job="${newest}"]`).waitFor();
  const rows = await page.locator('tr[data-job]').count();
  assert.ok(rows <= 50, `${rows} rows in the page`);
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('a dead job is retried by clicking, and a refused action says why', async () => {
  const id = await daemon.submit('fails', { step: 1 }, { max_attempts: 1 });
  await daemon.state(id, ['dead']);
  const page = await open();
  await page.goto(daemon.base + '/ui/dead');
  await live(page);
  const row = page.locator(`tr[data-job="${id}"]`);
  await row.getByRole('button', { name: /^Retry/ }).click();
  await page.locator('#flash .notice.ok').filter({ hasText: id }).waitFor();
  // It runs again (and, as `fails` does, fails again): a second attempt is recorded.
  await until(`a second attempt of ${id}`, async () => (await daemon.api('GET', `/v1/jobs/${id}`)).body.attempts.length >= 2);
  // Its page keeps its history: attempts 1 and 2 (numbered on, not from 1 again), each with
  // its own log region.
  await daemon.state(id, ['dead']);
  await page.goto(daemon.base + `/ui/jobs/${id}`);
  await live(page);
  const numbers = await page.locator('section[aria-labelledby="attempts-h"] tbody tr td:first-child').allTextContents();
  assert.deepEqual(numbers.map((n) => n.trim()), ['1', '2']);
  const summaries = await page.locator('details.log summary').allTextContents();
  assert.deepEqual(summaries.map((t) => t.trim()), ['Attempt 2 · failed', 'Attempt 1 · failed']);
  assert.equal(await page.locator('#log-1').count(), 1);
  assert.equal(await page.locator('#log-2').count(), 1);
  assert.deepEqual(await axe(page), []);
  // The job page of a succeeded job: Retry is not offered; the API's refusal shows if forced.
  const ok = await daemon.submit('hello', { name: 'x' });
  await daemon.state(ok, ['succeeded']);
  await page.goto(daemon.base + `/ui/jobs/${ok}`);
  await live(page);
  assert.equal(await page.getByRole('button', { name: /^Retry/ }).count(), 0);
  const refusal = await page.evaluate(async (jobId) => {
    const r = await fetch(`/ui/jobs/${jobId}/retry`, { method: 'POST', headers: { 'hx-request': 'true' } });
    return [r.status, await r.text()];
  }, ok);
  assert.equal(refusal[0], 409);
  assert.match(refusal[1], /only a dead or cancelled job can be retried/);
  assert.deepEqual(page.errors.filter((e) => !e.includes('409')), []);
  await page.context().close();
});

test("a job's logs show", async () => {
  // `hello` prints `greeted <name>` to stdout at its end; the page is open while it runs.
  const id = await daemon.submit('hello', { name: 'logs-shown', steps: 25 });
  const page = await open();
  await page.goto(daemon.base + `/ui/jobs/${id}`);
  await live(page);
  await page.locator('pre.log').filter({ hasText: 'greeted logs-shown' }).waitFor();
  await daemon.state(id, ['succeeded']);
  await page.getByRole('heading', { name: 'Logs' }).waitFor();
  assert.deepEqual(await axe(page), []);
  await page.screenshot({ path: join(shots, 'job-logs-light.png'), fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('a pool is resized from its page', async () => {
  const id = await daemon.submit('hello', { name: 'pool' });
  await daemon.state(id, ['succeeded']);
  const pools = (await daemon.api('GET', '/v1/pools')).body.pools;
  const pool = pools.find((p) => p.isolation === 'pool');
  assert.ok(pool, 'a resident pool exists');
  const page = await open();
  await page.goto(daemon.base + '/ui/pools');
  await live(page);
  const row = page.locator(`tr[data-pool="${pool.name}"]`);
  const target = pool.workers === 2 ? 3 : 2;
  await row.locator('input[name="size"]').fill(String(target));
  await row.getByRole('button', { name: 'Resize' }).click();
  await page.locator('#flash .notice.ok').filter({ hasText: `${target} workers` }).waitFor();
  await until(`pool ${pool.name} at ${target} workers`, async () => {
    const p = (await daemon.api('GET', '/v1/pools')).body.pools.find((x) => x.name === pool.name);
    return p.workers === target;
  });
  await page.locator(`tr[data-pool="${pool.name}"] td[data-workers]`).filter({ hasText: String(target) }).waitFor();
  assert.deepEqual(page.errors, []);
  await page.screenshot({ path: join(shots, 'pools-resized.png'), fullPage: true });
  await page.context().close();
});

test('a pool is paused and resumed from its page', async () => {
  const id = await daemon.submit('hello', { name: 'pause' });
  await daemon.state(id, ['succeeded']);
  const pool = (await daemon.api('GET', '/v1/pools')).body.pools.find((p) => p.isolation === 'pool');
  const page = await open();
  await page.goto(daemon.base + '/ui/pools');
  await live(page);
  const row = () => page.locator(`tr[data-pool="${pool.name}"]`);
  await row().getByRole('button', { name: `Pause pool ${pool.name}` }).click();
  await row().getByRole('button', { name: `Resume pool ${pool.name}` }).waitFor();
  let queues = (await daemon.api('GET', '/v1/queues')).body.queues;
  assert.ok(queues.some((q) => q.name === pool.name), 'paused in the API');
  await page.screenshot({ path: join(shots, 'pools-paused.png'), fullPage: true });
  await row().getByRole('button', { name: `Resume pool ${pool.name}` }).click();
  await row().getByRole('button', { name: `Pause pool ${pool.name}` }).waitFor();
  queues = (await daemon.api('GET', '/v1/queues')).body.queues;
  assert.ok(!queues.some((q) => q.name === pool.name), 'running again in the API');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('a schedule is paused and resumed', async () => {
  await daemon.api('POST', '/v1/cron', { name: 'weekly', cron: '0 4 * * 1', job: 'hello' });
  const page = await open();
  await page.goto(daemon.base + '/ui/schedules');
  await live(page);
  const row = () => page.locator('tr[data-schedule="weekly"]');
  await row().getByRole('button', { name: 'Pause schedule weekly' }).click();
  await row().getByRole('button', { name: 'Resume schedule weekly' }).waitFor();
  let s = (await daemon.api('GET', '/v1/cron')).body.schedules.find((x) => x.name === 'weekly');
  assert.ok(s.paused, 'paused in the API');
  await row().getByRole('button', { name: 'Resume schedule weekly' }).click();
  await row().getByRole('button', { name: 'Pause schedule weekly' }).waitFor();
  s = (await daemon.api('GET', '/v1/cron')).body.schedules.find((x) => x.name === 'weekly');
  assert.equal(s.paused, null, 'active again in the API');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('with --token: the login works once, and requests without it are refused', async () => {
  const secured = await Daemon.start({ token: 'correct-horse-battery' });
  try {
    // Without a session: pages send to the login form, actions and the API answer 401.
    const bare = await fetch(secured.base + '/ui/jobs', { redirect: 'manual' });
    assert.equal(bare.status, 303);
    assert.match(bare.headers.get('location'), /^\/ui\/login\?next=/);
    const action = await fetch(secured.base + '/ui/pools/node/resize', { method: 'POST', headers: { 'hx-request': 'true' }, body: 'size=1' });
    assert.equal(action.status, 401);
    assert.equal((await fetch(secured.base + '/v1/jobs')).status, 401);

    const page = await open();
    await page.goto(secured.base + '/ui/pools');
    await page.getByLabel('Token').waitFor();
    assert.deepEqual(await axe(page), []);
    await page.screenshot({ path: join(shots, 'login-light.png') });
    await page.getByLabel('Token').fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: "not this daemon's token" }).waitFor();
    await page.getByLabel('Token').fill('correct-horse-battery');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Pools' }).waitFor();
    assert.ok(page.url().endsWith('/ui/pools'), page.url());
    await live(page);
    const [cookie] = await page.context().cookies();
    assert.equal(cookie.name, 'offload_session');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.notEqual(cookie.value, 'correct-horse-battery');
    // Signing out ends the session.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Token').waitFor();
    assert.deepEqual(page.errors.filter((e) => !/401/.test(e)), []);
    await page.context().close();
  } finally {
    await secured.stop();
  }
});
