'use strict';
// Every case of tests/conformance/cases.json, against the runner with the fixture jobs of
// tests/conformance/jobs ("node") and against tests/conformance/plain-worker.js ("plain-node").

const { describe, test } = require('node:test');
const { loadCases, runCase, RUNNER, PLAIN_WORKER, FIXTURE_JOBS } = require('./harness');

const { cases } = loadCases();

const kinds = [
  { kind: 'node', script: RUNNER },
  { kind: 'plain-node', script: PLAIN_WORKER },
];

for (const { kind, script } of kinds) {
  describe(`conformance: ${kind}`, { concurrency: 4 }, () => {
    for (const c of cases) {
      const skip = Array.isArray(c.skip) && c.skip.includes(kind) ? `skipped for ${kind} by cases.json` : false;
      test(c.name, { skip, timeout: 30000 }, async () => {
        await runCase(c, { script, jobsDir: FIXTURE_JOBS });
      });
    }
  });
}
