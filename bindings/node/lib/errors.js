'use strict';
// Typed errors: every failure is an OffloadError subclass whose `code` is the Rust outcome or
// refusal (`TimedOut`, `Killed`, `Crashed`, `ResourceLimit`, `Exited`, `Failed`, `Cancelled`,
// `JobNotFound`, `InvalidJob`, `InvalidArgument`, `QueueFull`, `ShuttingDown`, …) and that
// names the job. A job that threw carries its own stack in `jobStack` (and in `stack`).

class OffloadError extends Error {
  constructor(message, { code, job = null, jobStack = null, errorName = null, outcome = null, attempts = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code || this.constructor.code || 'Error';
    this.job = job;
    this.errorName = errorName;
    this.jobStack = jobStack;
    this.outcome = outcome;
    this.attempts = attempts;
    if (jobStack) this.stack = `${this.name}: ${message}\n  job stack:\n${indent(jobStack)}\n  host stack:${hostFrames(this.stack)}`;
  }
  get name() {
    return this.constructor.name;
  }
}

function indent(text) {
  return String(text).split('\n').map((l) => `    ${l}`).join('\n');
}
function hostFrames(stack) {
  const lines = String(stack || '').split('\n');
  const i = lines.findIndex((l) => /^\s+at /.test(l));
  return i === -1 ? '' : `\n${lines.slice(i).join('\n')}`;
}

const CODES = [
  ['TimedOutError', 'TimedOut'],
  ['CancelledError', 'Cancelled'],
  ['KilledError', 'Killed'],
  ['CrashedError', 'Crashed'],
  ['ExitedError', 'Exited'],
  ['ResourceLimitError', 'ResourceLimit'],
  ['ProtocolError', 'ProtocolError'],
  ['JobFailedError', 'Failed'],
  ['JobNotFoundError', 'JobNotFound'],
  ['InvalidJobError', 'InvalidJob'],
  ['InvalidArgumentError', 'InvalidArgument'],
  ['QueueFullError', 'QueueFull'],
  ['ShuttingDownError', 'ShuttingDown'],
  ['PoolGoneError', 'PoolGone'],
  ['StartFailedError', 'StartFailed'],
  ['SpawnFailedError', 'SpawnFailed'],
  ['ParamsTooLargeError', 'ParamsTooLarge'],
  ['ProcessGoneError', 'ProcessGone'],
  ['DeadlineExceededError', 'DeadlineExceeded'],
  ['NoSuchFunctionError', 'NoSuchFunction'],
  ['BusyError', 'Busy'],
  ['FrameTooLargeError', 'FrameTooLarge'],
  ['NoSuchWorkerError', 'NoSuchWorker'],
];

const classes = { OffloadError };
const byCode = new Map();
for (const [name, code] of CODES) {
  const cls = { [name]: class extends OffloadError {} }[name];
  cls.code = code;
  classes[name] = cls;
  byCode.set(code, cls);
}

/** Descriptors passed with a run (`opts.fds`) that could not be passed: the code says why
 * (crates/process `FdError::name`; `FdMissing` from the Node worker). */
class FdError extends OffloadError {}
classes.FdError = FdError;
const FD_CODES = new Set(['FdTooMany', 'FdClosed', 'FdsNotSupported', 'FdWrongKind', 'FdRefused', 'FdAckTimeout', 'FdChannelClosed', 'FdMissing']);
for (const code of FD_CODES) byCode.set(code, FdError);

/** An error of `code` (unknown codes give a plain OffloadError with that code). */
function makeError(code, message, extra = {}) {
  const Cls = byCode.get(code) || OffloadError;
  return new Cls(message, { ...extra, code });
}

const SIGNALS = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 15: 'SIGTERM', 24: 'SIGXCPU', 25: 'SIGXFSZ' };
const signalName = (n) => SIGNALS[n] || `signal ${n}`;

/** The SDK's own refusals keep their wire name as the code. */
const SDK_NAMES = new Set(['Cancelled', 'DeadlineExceeded', 'JobNotFound', 'Busy', 'ShuttingDown', 'NoSuchFunction', 'FrameTooLarge', 'PoolGone', 'Exited', 'NoSuchWorker']);

/** A Rust `Outcome` (JSON object) to `{ok, value}` or `{ok: false, error}`. */
function fromOutcome(outcome, job, attempts = null) {
  const o = outcome || { outcome: 'protocol_error', message: 'no outcome' };
  const at = `job ${JSON.stringify(job)}`;
  const extra = { job, outcome: o, attempts };
  switch (o.outcome) {
    case 'succeeded':
      return { ok: true, value: o.value === undefined ? null : o.value };
    case 'failed':
    case 'failed_no_retry': {
      // failed_no_retry: the job marked its error `retry: false` (the pool did not retry it).
      const code = SDK_NAMES.has(o.name) || FD_CODES.has(o.name) ? o.name : 'Failed';
      const retry = o.outcome === 'failed';
      return { ok: false, error: makeError(code, `${at} failed: ${o.name}: ${o.message}`, { ...extra, errorName: o.name, jobStack: o.stack || null, retry }) };
    }
    case 'timed_out':
      return { ok: false, error: makeError('TimedOut', `${at} timed out and was stopped`, extra) };
    case 'cancelled':
      return { ok: false, error: makeError('Cancelled', `${at} was cancelled`, extra) };
    case 'killed':
      return { ok: false, error: makeError('Killed', `${at} was killed (${signalName(o.signal)})`, { ...extra }) };
    case 'exited':
      return { ok: false, error: makeError('Exited', `${at}: its process exited with status ${o.code} before answering`, extra) };
    case 'crashed':
      return { ok: false, error: makeError('Crashed', `${at}: its process crashed (${signalName(o.signal)})`, extra) };
    case 'resource_limit':
      return { ok: false, error: makeError('ResourceLimit', `${at} hit its ${o.which} limit`, extra) };
    case 'protocol_error':
      return { ok: false, error: makeError('ProtocolError', `${at}: protocol error: ${o.message}`, extra) };
    default:
      return { ok: false, error: makeError('ProtocolError', `${at}: unknown outcome ${JSON.stringify(o)}`, extra) };
  }
}

/** A napi error "[Code] text" to a typed error naming the job. */
function fromNative(err, job) {
  const m = /^\[(\w+)\] ([\s\S]*)$/.exec(err && err.message ? err.message : String(err));
  if (!m) return err;
  const text = job !== undefined && !m[2].includes(JSON.stringify(job)) ? `job ${JSON.stringify(job)}: ${m[2]}` : m[2];
  return makeError(m[1], text, { job: job === undefined ? null : job });
}

/** JSON of `value` for job `job`, or an InvalidArgumentError naming it. */
function toJson(value, job, what = 'params') {
  let s;
  try {
    s = JSON.stringify(value === undefined ? null : value);
  } catch (e) {
    throw makeError('InvalidArgument', `job ${JSON.stringify(job)}: its ${what} are not JSON-serialisable: ${e.message}`, { job });
  }
  if (s === undefined) {
    throw makeError('InvalidArgument', `job ${JSON.stringify(job)}: its ${what} are not JSON-serialisable (${typeof value})`, { job });
  }
  return s;
}

module.exports = { ...classes, makeError, fromOutcome, fromNative, toJson, signalName };
