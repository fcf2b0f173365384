'use strict';
// Fixture "fail_final": fails with a non-retryable error named ValidationError whose message is
// params.message (through ctx.fail, so `retry: false` reaches the wire).

class ValidationError extends Error {}

module.exports = function failFinal(params, ctx) {
  ctx.fail(new ValidationError(params && params.message), { retry: false });
};
