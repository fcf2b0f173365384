'use strict';
// Option checks: every refusal names the option and the limit.
const { makeError } = require('./errors');
const { MAX_WORKERS, MAX_KEY_BYTES } = require('./native');

const MAX_MS = 2 ** 31 - 1; // setTimeout's limit, ~24.8 days

function bad(name, what, v) {
  return makeError('InvalidArgument', `option "${name}" must be ${what}, got ${JSON.stringify(v)}`);
}

/** An integer >= 0 (or undefined). */
function whole(name, v) {
  if (v === undefined || v === null) return undefined;
  if (!Number.isSafeInteger(v) || v < 0) throw bad(name, 'an integer >= 0', v);
  return v;
}

/** An integer >= 1 (or undefined). */
function positive(name, v) {
  if (v === undefined || v === null) return undefined;
  if (!Number.isSafeInteger(v) || v < 1) throw bad(name, 'an integer >= 1', v);
  return v;
}

/** A number of workers: an integer from `least` to MAX_WORKERS (1024, the pool's own bound;
 * or undefined). */
function workers(name, v, least = 0) {
  if (v === undefined || v === null) return undefined;
  if (!Number.isSafeInteger(v) || v < least || v > MAX_WORKERS) {
    throw bad(name, `an integer from ${least} to ${MAX_WORKERS} (MAX_WORKERS)`, v);
  }
  return v;
}

/** A worker's pid: an integer from 1 to 2^32-1 (or undefined). */
function workerPid(name, v) {
  if (v === undefined || v === null) return undefined;
  if (!Number.isSafeInteger(v) || v < 1 || v > 0xffffffff) throw bad(name, 'a worker\'s pid (an integer from 1 to 4294967295)', v);
  return v;
}

/** Milliseconds, 0 to 2^31-1 (or undefined). */
function duration(name, v) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_MS) throw bad(name, `a number of milliseconds from 0 to ${MAX_MS}`, v);
  return Math.round(v);
}

/** An AbortSignal (or undefined): anything with `aborted` and `addEventListener`, so that a
 * signal of another realm (an Electron renderer's, a polyfill's) passes. Checked before a job
 * starts: a bad one found later would leave a started job without its handle. */
function abortSignal(name, v) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || typeof v.addEventListener !== 'function' || typeof v.aborted !== 'boolean') {
    throw makeError('InvalidArgument', `option "${name}" must be an AbortSignal, got ${typeof v === 'object' ? 'an object without addEventListener/aborted' : JSON.stringify(v)}`);
  }
  return v;
}

/** A callback (or undefined). */
function callback(name, v) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'function') throw bad(name, 'a function', typeof v);
  return v;
}

/** Refuse unknown option names (a typo would otherwise be ignored silently). */
function checkOptions(where, opts, known) {
  if (opts === null || typeof opts !== 'object') throw makeError('InvalidArgument', `${where}: options must be an object`);
  for (const k of Object.keys(opts)) {
    if (!known.includes(k)) {
      throw makeError('InvalidArgument', `${where}: unknown option "${k}" (known: ${known.join(', ')})`);
    }
  }
}

/** Checks an affinity key: a string of at most MAX_KEY_BYTES bytes of UTF-8 (the pool's bound). */
function affinityKey(job, key) {
  if (typeof key !== 'string' || Buffer.byteLength(key) > MAX_KEY_BYTES) {
    const len = typeof key === 'string' ? `, ${Buffer.byteLength(key)} were given` : '';
    throw makeError('InvalidArgument', `job ${JSON.stringify(job)}: "key" must be a string of at most ${MAX_KEY_BYTES} bytes (MAX_KEY_BYTES)${len}`, { job });
  }
}

module.exports = { affinityKey, whole, positive, workers, workerPid, duration, abortSignal, callback, checkOptions, MAX_MS, MAX_WORKERS };
