'use strict';
// BullMQ's side of the end-to-end benchmark: one Worker with a sandboxed processor (a file, run
// in child processes: useWorkerThreads false) and concurrency 2, so 2 child processes run the
// jobs, like offload's 2 Node workers.
//
//   node bull-worker.js <redis port> [queue] [concurrency]
//
// Prints "ready" once connected; closes on SIGTERM/SIGINT.
const path = require('node:path');
const { Worker } = require('bullmq');

const port = Number(process.argv[2]);
const queue = process.argv[3] || 'bench';
const concurrency = Number(process.argv[4] || 2);

const worker = new Worker(queue, path.join(__dirname, 'noop-processor.js'), {
  connection: { host: '127.0.0.1', port, maxRetriesPerRequest: null },
  concurrency,
  useWorkerThreads: false,
});
worker.on('error', (e) => process.stderr.write(`bull-worker: ${e.stack || e}\n`));
worker.on('failed', (job, e) => process.stderr.write(`bull-worker: job ${job && job.id} failed: ${e}\n`));
worker.waitUntilReady().then(() => process.stdout.write('ready\n'));

let closing = false;
const stop = () => {
  if (closing) return;
  closing = true;
  worker.close().then(() => process.exit(0), () => process.exit(1));
  setTimeout(() => process.exit(1), 10000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
