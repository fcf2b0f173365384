'use strict';
// A Node host that starts a pool, a ChildJob and an ee-core ChildJob, prints their pids, and
// waits to be killed (test/sigkill.test.js SIGKILLs it).
const path = require('node:path');
const offload = require('..');
const eeCore = require('../ee-core');

(async () => {
  const jobs = path.join(__dirname, 'jobs');
  const pool = await offload.ChildPool.start({ jobs, min: 2, max: 2 });
  const cj = new offload.ChildJob({ jobs });
  const run = cj.start('stubborn', {});
  run.result.catch(() => {});
  const ee = new eeCore.ChildJob({ baseDir: path.join(__dirname, 'app') });
  const timer = ee.exec('./jobs/example/timer', { jobId: 'h', countdown: 600 });
  await new Promise((r) => run.once('progress', r));
  process.stdout.write(`${JSON.stringify({ pids: [...pool.pids(), run.pid, timer.pid] })}\n`);
  setInterval(() => {}, 1000);
})();
