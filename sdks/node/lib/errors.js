'use strict';
// Errors the SDK produces itself (docs/protocol.md §4, `error`), and the conversion of anything a
// job throws into the wire shape {name, message, stack}.

class OffloadError extends Error {
  constructor(message, options) {
    super(message, options);
    Object.defineProperty(this, 'name', { value: new.target.errorName, configurable: true, writable: true });
  }

  /** An error the SDK itself answers with (a refusal, a lookup failure): sent with a null stack,
   * which would only show the SDK's own frames. */
  static refusal(message) {
    const e = new this(message);
    Object.defineProperty(e, 'internal', { value: true });
    return e;
  }
}

function define(errorName) {
  const cls = class extends OffloadError {};
  Object.defineProperty(cls, 'name', { value: `${errorName}Error` });
  cls.errorName = errorName;
  return cls;
}

/** No such job file or handler. */
const JobNotFoundError = define('JobNotFound');
/** The job stopped after `cancel` (also the reason of `ctx.signal` on cancel and on shutdown). */
const CancelledError = define('Cancelled');
/** The job's soft deadline passed (the reason of `ctx.signal` then). */
const DeadlineExceededError = define('DeadlineExceeded');
/** A `run` or `call` arrived after `shutdown`. */
const ShuttingDownError = define('ShuttingDown');
/** The answer would exceed OFFLOAD_MAX_FRAME. */
const FrameTooLargeError = define('FrameTooLarge');
/** A `call` names a function the job does not have. */
const NoSuchFunctionError = define('NoSuchFunction');
/** More jobs than `concurrency`. */
const BusyError = define('Busy');

/**
 * A failure no retry can fix (bad input, a missing record): the job goes straight to dead,
 * whatever attempts it has left (`retry: false` on the wire). Any error with `retry === false`
 * does the same: `throw Object.assign(new Error('no such user'), { retry: false })`.
 */
class NonRetryableError extends Error {
  constructor(message, options) {
    super(message, options);
    Object.defineProperty(this, 'name', { value: 'NonRetryableError', configurable: true, writable: true });
    this.retry = false;
  }
}

/** Whether `err` is (or was caused by) a cancellation, a deadline or an AbortSignal abort. */
function isAbort(err) {
  return (
    err instanceof CancelledError ||
    err instanceof DeadlineExceededError ||
    (err !== null && typeof err === 'object' && (err.name === 'AbortError' || err.name === 'Cancelled'))
  );
}

function errorName(err) {
  const own = typeof err.name === 'string' && err.name !== '' ? err.name : '';
  if (own && own !== 'Error') return own;
  // `class ValidationError extends Error {}` keeps name "Error": report the class instead.
  const ctor = err.constructor && typeof err.constructor.name === 'string' ? err.constructor.name : '';
  if (ctor && ctor !== 'Object' && ctor !== 'Error') return ctor;
  return own || 'Error';
}

/**
 * The wire form of anything thrown: {name, message, stack}, plus `retry: false` when the error
 * says so (`NonRetryableError`, or any error with `retry === false`). Error-like objects keep
 * their name, message and stack; anything else (a string, a number, a plain object) becomes
 * name "Error" with a string message and a null stack.
 */
function serializeError(err) {
  if (err !== null && typeof err === 'object' && typeof err.message === 'string') {
    const out = {
      name: errorName(err),
      message: err.message,
      stack: err.internal !== true && typeof err.stack === 'string' ? err.stack : null,
    };
    if (err.retry === false) out.retry = false;
    return out;
  }
  let message;
  if (typeof err === 'string') message = err;
  else {
    try {
      message = JSON.stringify(err);
    } catch {
      message = undefined;
    }
    if (typeof message !== 'string') message = String(err);
  }
  return { name: 'Error', message, stack: null };
}

module.exports = {
  OffloadError,
  JobNotFoundError,
  CancelledError,
  DeadlineExceededError,
  ShuttingDownError,
  FrameTooLargeError,
  NoSuchFunctionError,
  BusyError,
  NonRetryableError,
  isAbort,
  serializeError,
};
