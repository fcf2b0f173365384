'use strict';
// The wire form of errors: `retry: false` only for errors that ask for it (NonRetryableError,
// `err.retry = false`, ctx.fail(err, { retry: false })), absent otherwise (older supervisors
// never see a new field they did not ask for).

const assert = require('node:assert/strict');
const { test } = require('node:test');
const { serializeError, NonRetryableError } = require('../lib/errors');
const { JobContext } = require('../lib/context');

test('only non-retryable errors carry retry: false', () => {
  assert.equal('retry' in serializeError(new Error('boom')), false);
  const e = serializeError(new NonRetryableError('no such user'));
  assert.deepEqual([e.name, e.message, e.retry], ['NonRetryableError', 'no such user', false]);
  const marked = serializeError(Object.assign(new TypeError('bad'), { retry: false }));
  assert.deepEqual([marked.name, marked.retry], ['TypeError', false]);
  assert.equal('retry' in serializeError('a string'), false);
});

test('ctx.fail throws, marking the error only when asked', () => {
  const fail = JobContext.prototype.fail;
  assert.throws(() => fail(new RangeError('x'), { retry: false }), (e) => e instanceof RangeError && e.retry === false);
  assert.throws(() => fail('plain'), (e) => e instanceof Error && e.message === 'plain' && e.retry === undefined);
});
