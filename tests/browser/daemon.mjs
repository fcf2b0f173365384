// A real `offload serve` for the browser tests: the workspace's binary, on 127.0.0.1 with a
// port the kernel picks, a temporary data folder (SQLite) and the example jobs. Bounded waits
// only; `stop()` ends it and checks the process table that it is gone.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '..', '..');

/** The `offload` binary: $OFFLOAD_BIN, else the workspace's debug build. */
export function binary() {
  if (process.env.OFFLOAD_BIN) return process.env.OFFLOAD_BIN;
  const target = process.env.CARGO_TARGET_DIR || join(repo, 'target');
  return join(target, 'debug', 'offload');
}

/** Waits until `check()` is truthy, at most `ms`; returns its value or throws `what`. */
export async function until(what, check, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${ms} ms`);
    await sleep(50);
  }
}

export class Daemon {
  /** `jobs`: the jobs folder (default examples/jobs); `args`: more `offload serve` arguments. */
  static async start({ token, jobs = join(repo, 'examples', 'jobs'), args = [] } = {}) {
    const bin = binary();
    if (!existsSync(bin)) throw new Error(`no ${bin}: run cargo build -p offload first`);
    const data = mkdtempSync(join(tmpdir(), 'offload-dash-'));
    const env = { ...process.env, OFFLOAD_LOG: 'info' };
    delete env.OFFLOAD_TOKEN;
    if (token) env.OFFLOAD_TOKEN = token;
    const child = spawn(bin, [
      'serve', '--jobs', jobs, '--data', data,
      '--listen', '127.0.0.1:0', '--log-format', 'json', ...args,
    ], { env, stdio: ['ignore', 'pipe', 'pipe'], cwd: data });
    const d = new Daemon(child, data, token);
    d.addr = await d.#listening();
    d.base = `http://${d.addr}`;
    return d;
  }

  constructor(child, data, token) {
    this.child = child;
    this.data = data;
    this.token = token;
    this.log = '';
    this.exited = new Promise((r) => child.once('exit', r));
  }

  #listening() {
    return new Promise((resolveAddr, reject) => {
      const timer = setTimeout(() => reject(new Error(`offload serve did not listen within 30 s:\n${this.log}`)), 30000);
      const read = (chunk) => {
        this.log = (this.log + chunk.toString()).slice(-64 * 1024);
        for (const line of this.log.split('\n')) {
          if (!line.includes('offload serve is listening')) continue;
          try {
            const addr = JSON.parse(line).fields.addr;
            clearTimeout(timer);
            resolveAddr(addr);
          } catch { /* a partial line: wait for the rest */ }
        }
      };
      this.child.stdout.on('data', read);
      this.child.stderr.on('data', read);
      this.child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`offload serve exited (${code}):\n${this.log}`)); });
    });
  }

  /** A JSON API call. */
  async api(method, path, body) {
    const headers = { 'content-type': 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const res = await fetch(this.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  async submit(job, params, extra = {}) {
    const r = await this.api('POST', '/v1/jobs', { job, params, ...extra });
    if (r.status !== 201) throw new Error(`submit ${job}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.id;
  }

  /** The job's state once it is one of `states` (bounded). */
  async state(id, states, ms = 30000) {
    return until(`job ${id} in ${states}`, async () => {
      const r = await this.api('GET', `/v1/jobs/${id}`);
      return states.includes(r.body.state) && r.body.state;
    }, ms);
  }

  /** SIGTERM, then SIGKILL if it lingers; checks /proc that the daemon is gone. */
  async stop() {
    const pid = this.child.pid;
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const done = await Promise.race([this.exited.then(() => true), sleep(15000).then(() => false)]);
      if (!done) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    }
    // Node reaps the child before 'exit' fires: its /proc entry must be gone.
    await until(`pid ${pid} gone from the process table`, () => !existsSync(`/proc/${pid}`), 5000);
    rmSync(this.data, { recursive: true, force: true });
  }
}
