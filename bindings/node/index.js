'use strict';
// offload for Node.js and Electron (CommonJS). See README.md; ESM: index.mjs; types: index.d.ts.

const errors = require('./lib/errors');
const { ChildPool, Task } = require('./lib/pool');
const { ChildJob, JobRun } = require('./lib/child-job');
const { LoadBalancer, AlgorithmType, ALGORITHMS } = require('./lib/balancer');
const { Client, ClientError } = require('./lib/client');
const { Schedule } = require('./lib/schedule');
const { MAX_WORKERS } = require('./lib/options');
const { MAX_KEY_BYTES, MAX_BINDINGS } = require('./lib/native');

module.exports = {
  ChildPool,
  Task,
  Schedule,
  ChildJob,
  JobRun,
  LoadBalancer,
  AlgorithmType,
  ALGORITHMS,
  Client,
  ClientError,
  MAX_WORKERS,
  MAX_KEY_BYTES,
  MAX_BINDINGS,
  ...Object.fromEntries(Object.entries(errors).filter(([k]) => /Error$/.test(k))),
};
