'use strict';
// Test support: start a worker the way the Rust supervisor does (an AF_UNIX stream socketpair as
// fd 3 — libuv creates one for a 'pipe' stdio slot — with NODE_CHANNEL_FD=3 and json
// serialization) and talk raw JSON lines to it, so tests can also send bytes that are not valid
// frames. Also the data-driven step runner of tests/conformance/cases.json.
//
// `node --test sdks/node/test/` runs every .js file of this folder, this one included: run as a
// test file it checks its own matcher.

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const SDK = path.join(__dirname, '..');
const RUNNER = path.join(SDK, 'runner.js');
const REPO = path.join(SDK, '..', '..');
const CONFORMANCE = path.join(REPO, 'tests', 'conformance');
const FIXTURE_JOBS = path.join(CONFORMANCE, 'jobs');
const PLAIN_WORKER = path.join(CONFORMANCE, 'plain-worker.js');

/** Hang guard for a single wait when a step gives none. */
const DEFAULT_WAIT_MS = 10000;

function cleanEnv() {
  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.startsWith('OFFLOAD_') || k.startsWith('NODE_CHANNEL') || k === 'NODE_TEST_CONTEXT' || k === 'NODE_DEBUG') {
      delete env[k];
    }
  }
  return env;
}

class WorkerProcess {
  /**
   * @param {object} o
   * @param {string} [o.script] the worker script (default: the runner)
   * @param {string} [o.jobsDir] OFFLOAD_JOBS_DIR
   * @param {object} [o.env] extra environment
   * @param {string} [o.cwd]
   */
  constructor({ script = RUNNER, jobsDir = FIXTURE_JOBS, env = {}, cwd, args = [] } = {}) {
    this.child = spawn(process.execPath, [script, ...args], {
      cwd: cwd || os.tmpdir(),
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: {
        ...cleanEnv(),
        OFFLOAD_CHANNEL_FD: '3',
        OFFLOAD_PROTOCOL: '1',
        OFFLOAD_JOBS_DIR: jobsDir,
        NODE_CHANNEL_FD: '3',
        NODE_CHANNEL_SERIALIZATION_MODE: 'json',
        ...env,
      },
    });
    this.channel = this.child.stdio[3];
    this.stdout = '';
    this.stderr = '';
    this.frames = [];
    this.waiters = [];
    this.buffer = '';
    this.exit = null;
    this.exitWaiters = [];
    this.child.stdout.setEncoding('utf8').on('data', (d) => (this.stdout += d));
    this.child.stderr.setEncoding('utf8').on('data', (d) => (this.stderr += d));
    this.channel.setEncoding('utf8');
    this.channel.on('data', (d) => this.onData(d));
    this.channel.on('error', () => {});
    // 'close': the process exited and its stdout, stderr and channel were read to the end.
    this.child.on('close', (code, signal) => {
      this.exit = { code, signal };
      for (const w of this.exitWaiters.splice(0)) w();
      this.wake();
    });
  }

  onData(d) {
    this.buffer += d;
    let i;
    while ((i = this.buffer.indexOf('\n')) !== -1) {
      const line = this.buffer.slice(0, i);
      this.buffer = this.buffer.slice(i + 1);
      if (line.trim() === '') continue;
      let frame;
      try {
        frame = JSON.parse(line);
      } catch (e) {
        frame = { $invalid: line, error: e.message };
      }
      this.frames.push(frame);
    }
    this.wake();
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Wait until new frames arrive, the worker exits, or `until` passes. */
  async waitFrames(until, what) {
    if (this.exit) {
      throw new Error(`worker exited (${JSON.stringify(this.exit)}) while ${what} was expected; stderr:\n${this.stderr}`);
    }
    const left = until - Date.now();
    if (left <= 0) throw new Error(`no ${what} in time; stderr:\n${this.stderr}`);
    await new Promise((resolve) => {
      const t = setTimeout(resolve, left);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** The next frame from the worker (fails after `ms` or when the worker exits first). */
  async next(ms = DEFAULT_WAIT_MS) {
    const until = Date.now() + ms;
    while (this.frames.length === 0) await this.waitFrames(until, 'a frame');
    return this.frames.shift();
  }

  /** Take the first frame matching `pattern` (partial match) out of the queue, waiting for it;
   * other frames stay queued. */
  async take(pattern, ms = DEFAULT_WAIT_MS) {
    const until = Date.now() + ms;
    for (;;) {
      const k = this.frames.findIndex((f) => matches(pattern, f));
      if (k !== -1) return this.frames.splice(k, 1)[0];
      await this.waitFrames(until, `a frame like ${JSON.stringify(pattern)}`);
    }
  }

  /** Wait until the worker's `stream` ("stdout" or "stderr") matches `re` (its pipes are not
   * ordered with the channel). */
  async output(stream, re, ms = DEFAULT_WAIT_MS) {
    const until = Date.now() + ms;
    while (!re.test(this[stream])) {
      if (Date.now() > until) throw new Error(`${stream} never matched ${re}; it was:\n${this[stream]}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this[stream];
  }

  /** The `ready` handshake. */
  async ready(ms = DEFAULT_WAIT_MS) {
    const f = await this.next(ms);
    assert.equal(f.type, 'ready', `expected ready, got ${JSON.stringify(f)}`);
    return f;
  }

  send(obj) {
    this.channel.write(`${JSON.stringify(obj)}\n`);
  }

  sendRaw(text) {
    this.channel.write(text);
  }

  /** Run a job and return its answer (skipping progress/event frames, kept in `seen`). */
  async run(job, params, extra = {}, ms = DEFAULT_WAIT_MS) {
    const id = extra.id || `r${++WorkerProcess.seq}`;
    this.send({ type: 'run', id, job, params, ...extra });
    return this.answer(id, ms);
  }

  /**
   * The answer (result or error) of job `id`, taken out of the frames received so far wherever
   * it is, so that concurrent tests can share one worker. `answer.seen` holds the progress and
   * event frames of that job that came before it.
   */
  async answer(id, ms = DEFAULT_WAIT_MS) {
    const until = Date.now() + ms;
    for (;;) {
      const k = this.frames.findIndex((f) => (f.type === 'result' || f.type === 'error') && f.id === id);
      if (k !== -1) {
        const seen = [];
        const rest = [];
        for (const f of this.frames.slice(0, k)) (f.id === id ? seen : rest).push(f);
        const answer = this.frames[k];
        this.frames = rest.concat(this.frames.slice(k + 1));
        answer.seen = seen;
        return answer;
      }
      await this.waitFrames(until, `the answer of job ${id}`);
    }
  }

  /** Close the supervisor's end of the channel. */
  close() {
    this.channel.end();
    this.channel.destroy();
  }

  /** Wait for the process to exit: {code, signal}. */
  async exited(ms = DEFAULT_WAIT_MS) {
    if (!this.exit) {
      await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`worker still running after ${ms} ms; stderr:\n${this.stderr}`)), ms);
        this.exitWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.exit;
  }

  kill() {
    if (!this.exit) this.child.kill('SIGKILL');
  }
}
WorkerProcess.seq = 0;

// --- matching (the rules of cases.json: partial, "$any", "$string", "$number") ---------------

function matches(pattern, value) {
  if (pattern === '$any') return value !== undefined;
  if (pattern === '$string') return typeof value === 'string' && value.length > 0;
  if (pattern === '$number') return typeof value === 'number';
  if (Array.isArray(pattern)) {
    return Array.isArray(value) && value.length === pattern.length && pattern.every((p, i) => matches(p, value[i]));
  }
  if (pattern !== null && typeof pattern === 'object') {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
    return Object.keys(pattern).every((k) => matches(pattern[k], value[k]));
  }
  return Object.is(pattern, value);
}

// --- the cases.json step runner ------------------------------------------------------------

function loadCases() {
  return JSON.parse(fs.readFileSync(path.join(CONFORMANCE, 'cases.json'), 'utf8'));
}

/** A valid `run` frame of exactly `bytes` bytes (newline excluded), as the Rust harness sends:
 * a worker without a size check would run it. */
function oversizedLine(bytes) {
  const head = '{"type":"run","id":"big","job":"echo","params":"';
  const tail = '"}';
  return head + 'x'.repeat(Math.max(0, bytes - head.length - tail.length)) + tail;
}

async function runCase(c, { script = RUNNER, jobsDir = FIXTURE_JOBS } = {}) {
  const w = new WorkerProcess({ script, jobsDir, env: c.env || {} });
  try {
    for (const [i, step] of c.steps.entries()) {
      const ms = step.within_ms || DEFAULT_WAIT_MS;
      const where = `case ${c.name}, step ${i} ${JSON.stringify(step)}`;
      if (step.send) w.send(step.send);
      else if (step.send_raw !== undefined) w.sendRaw(step.send_raw);
      else if (step.send_raw_oversized !== undefined) w.sendRaw(`${oversizedLine(step.send_raw_oversized)}\n`);
      else if (step.sleep_ms !== undefined) await new Promise((r) => setTimeout(r, step.sleep_ms));
      else if (step.close) w.close();
      else if (step.expect) {
        const f = await w.next(ms);
        assert.ok(matches(step.expect, f), `${where}: got ${JSON.stringify(f)}`);
      } else if (step.expect_set) {
        const want = [...step.expect_set];
        const until = Date.now() + ms;
        while (want.length) {
          const f = await w.next(Math.max(1, until - Date.now()));
          const k = want.findIndex((p) => matches(p, f));
          assert.ok(k !== -1, `${where}: unexpected ${JSON.stringify(f)}`);
          want.splice(k, 1);
        }
      } else if (step.expect_exit) {
        const { code } = await w.exited(ms);
        const want = step.expect_exit.code;
        if (want === 'nonzero') assert.ok(code !== 0, `${where}: exit code ${code}`);
        else if (want !== 'any') assert.equal(code, want, `${where}: stderr ${w.stderr}`);
      } else if (step.expect_stderr_contains !== undefined) {
        assert.ok(w.stderr.includes(step.expect_stderr_contains), `${where}: stderr was ${JSON.stringify(w.stderr)}`);
      } else {
        throw new Error(`${where}: unknown step`);
      }
    }
    return w;
  } finally {
    w.kill();
  }
}

/** A fresh temporary folder with the given files ({relative path: content}). */
function tempTree(files = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-node-'));
  writeTree(dir, files);
  return dir;
}

function writeTree(dir, files) {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
  }
}

module.exports = {
  WorkerProcess,
  matches,
  loadCases,
  runCase,
  oversizedLine,
  tempTree,
  writeTree,
  SDK,
  RUNNER,
  FIXTURE_JOBS,
  PLAIN_WORKER,
};

if (require.main === module) {
  const test = require('node:test');
  test('the cases.json matcher is partial and knows $any, $string, $number', () => {
    assert.ok(matches({ a: 1 }, { a: 1, b: 2 }));
    assert.ok(!matches({ a: 1, b: 2 }, { a: 1 }));
    assert.ok(matches({ a: [1, { b: 'ü' }] }, { a: [1, { b: 'ü', c: 0 }] }));
    assert.ok(!matches({ a: [1] }, { a: [1, 2] }));
    assert.ok(matches({ s: '$string', n: '$number', x: '$any' }, { s: 'x', n: 0, x: null }));
    assert.ok(!matches({ s: '$string' }, { s: '' }));
    assert.ok(!matches({ x: '$any' }, {}));
    assert.ok(matches({ v: null }, { v: null }));
    assert.ok(!matches({ v: null }, {}));
    assert.equal(Buffer.byteLength(oversizedLine(8192)), 8192);
    assert.ok(JSON.parse(oversizedLine(8192)));
  });
}
