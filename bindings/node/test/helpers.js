'use strict';
// Test helpers: /proc reads and bounded waits (no timing thresholds: deadlines are generous).
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const JOBS = path.join(ROOT, 'test-fixtures', 'jobs');
const APP = path.join(ROOT, 'test-fixtures', 'app');

/** Whether pid is a live (non-zombie) process. */
function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Pids of live processes whose environment holds `key=value`. */
function pidsWithEnv(key, value) {
  const needle = `${key}=${value}`;
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const env = fs.readFileSync(`/proc/${d}/environ`, 'utf8').split('\0');
      if (env.includes(needle) && alive(Number(d))) out.push(Number(d));
    } catch {
      // gone or not ours
    }
  }
  return out;
}

/** Poll `fn` until it returns truthy or `ms` passes; returns its last value. */
async function until(fn, ms = 20000, what = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what} not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The next `n` emissions of `event` on `emitter`. */
function collect(emitter, event, n) {
  return new Promise((resolve) => {
    const got = [];
    const on = (...args) => {
      got.push(args.length === 1 ? args[0] : args);
      if (got.length === n) {
        emitter.off(event, on);
        resolve(got);
      }
    };
    emitter.on(event, on);
  });
}

module.exports = { ROOT, JOBS, APP, alive, pidsWithEnv, until, collect };
