#!/usr/bin/env node
'use strict';
// The entry an offload supervisor starts for Node jobs:
//
//   node sdks/node/runner.js    with OFFLOAD_CHANNEL_FD=3 OFFLOAD_PROTOCOL=1 OFFLOAD_MAX_FRAME
//                               OFFLOAD_JOBS_DIR OFFLOAD_CONCURRENCY NODE_CHANNEL_FD=3
//                               NODE_CHANNEL_SERIALIZATION_MODE=json
//
// It answers `ready`, then runs job files from OFFLOAD_JOBS_DIR (see README.md). Required as a
// module it starts nothing and exports `reload(path)` and the job loader, for hot reload.

const { FileJobs } = require('./lib/jobs');
const { installCjsFallbacks } = require('./lib/hooks');
const { Worker, ConfigError, readConfig, writeStderr } = require('./lib/worker');

let jobs = null;

/** The runner's job loader (created on first use from OFFLOAD_JOBS_DIR). */
function getJobs() {
  if (!jobs) jobs = new FileJobs({ jobsDir: process.env.OFFLOAD_JOBS_DIR || './jobs' });
  return jobs;
}

/**
 * Hot reload of one job file (absolute path, or a job name): awaits its `unload()` export if it
 * has one, then evicts it from the module cache; the next run loads the file again.
 */
function reload(fileOrName) {
  return getJobs().reload(fileOrName);
}

function main(env = process.env) {
  let config;
  try {
    config = readConfig(env);
    installCjsFallbacks();
    jobs = new FileJobs({ jobsDir: config.jobsDir });
    return new Worker({ jobs, concurrency: config.concurrency, maxFrame: config.maxFrame }).start();
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    writeStderr(`offload worker: ${e.message}\n`);
    process.exit(2);
  }
  return undefined;
}

module.exports = {
  main,
  reload,
  get jobs() {
    return getJobs();
  },
};

if (require.main === module) main();
