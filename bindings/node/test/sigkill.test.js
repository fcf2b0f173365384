'use strict';
// SIGKILL of the Node host leaves no process behind (read from /proc): PR_SET_PDEATHSIG from
// the process crate's long-lived spawner thread, and its lifeline reaper.
const assert = require('node:assert/strict');
const { test } = require('node:test');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT, alive, until } = require('./helpers');

/** Live processes whose OFFLOAD_SUPERVISOR marker belongs to host `pid`. */
function markedBy(pid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const env = fs.readFileSync(`/proc/${d}/environ`, 'utf8').split('\0');
      if (env.some((kv) => kv.startsWith(`OFFLOAD_SUPERVISOR=${pid}-`)) && alive(Number(d))) out.push(Number(d));
    } catch {
      // gone, or not readable
    }
  }
  return out;
}

test('SIGKILL of the Node host: every worker, job and grandchild dies', async () => {
  const host = spawn(process.execPath, [path.join(ROOT, 'test-fixtures', 'host.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  host.stdout.setEncoding('utf8');
  const line = await new Promise((resolve, reject) => {
    host.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]);
    });
    host.on('exit', (code) => reject(new Error(`host exited early (${code})`)));
  });
  const { pids } = JSON.parse(line);
  assert.equal(pids.length, 4);
  assert.ok(pids.every(alive), 'all started');
  const marked = markedBy(host.pid);
  assert.ok(marked.length >= 4, `the workers carry the host's marker: ${marked}`);
  process.kill(host.pid, 'SIGKILL');
  await new Promise((r) => host.on('exit', r));
  await until(() => pids.every((p) => !alive(p)) && markedBy(host.pid).length === 0, 20000, 'no process left');
});
