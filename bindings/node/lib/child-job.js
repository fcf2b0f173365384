'use strict';
// ChildJob: one fresh, supervised process per job (offload_process::ChildJob).

const { EventEmitter } = require('node:events');
const path = require('node:path');
const native = require('./native');
const { makeError, fromOutcome, fromNative, toJson } = require('./errors');
const { PathResolver } = require('./paths');
const { EventStream, eventsLost } = require('./events');
const { duration, positive, abortSignal, callback, checkOptions } = require('./options');
const { keep } = require('./keepalive');

const EXEC_OPTIONS = ['timeout', 'signal', 'onProgress', 'env', 'cwd', 'args', 'killSignal', 'cancelGrace', 'memoryLimit', 'cpuSeconds'];

/** The native exec options from the public ones. */
function execOptions(opts) {
  return {
    timeoutMs: duration('timeout', opts.timeout),
    cancelGraceMs: duration('cancelGrace', opts.cancelGrace),
    env: opts.env,
    cwd: opts.cwd,
    args: opts.args,
    killSignal: opts.killSignal,
    memoryLimit: positive('memoryLimit', opts.memoryLimit),
    cpuSeconds: positive('cpuSeconds', opts.cpuSeconds),
  };
}

/** One job in its own process: an EventEmitter ('progress', 'event', 'log', 'exit') and an
 * async iterator over the same events. `result` settles with the job's outcome. */
class JobRun extends EventEmitter {
  constructor(job) {
    super();
    this.job = job;
    this.native = null;
    this.streams = new Set();
    this.exitedOutcome = null;
    this.exitSeen = new Promise((resolve) => (this.exitResolve = resolve));
  }

  /** Its pid (also its process group id). */
  get pid() {
    return this.native ? this.native.pid : undefined;
  }

  _onEvent(json) {
    let ev;
    try {
      ev = JSON.parse(json);
    } catch {
      return;
    }
    const out = { type: ev.event, ...ev };
    delete out.event;
    for (const s of this.streams) s.push(out);
    switch (ev.event) {
      case 'progress':
        this.emit('progress', ev.data, { pid: ev.pid, job: this.job });
        break;
      case 'event':
        this.emit('event', ev.name, ev.data, { pid: ev.pid, receiver: ev.receiver, job: this.job });
        break;
      case 'log':
        if (this.listenerCount('log') > 0) this.emit('log', ev.line, ev.stream);
        break;
      case 'lost':
        eventsLost(ev.lost);
        this.emit('lost', ev.lost);
        break;
      case 'exited':
        this.exitedOutcome = ev.outcome;
        for (const s of this.streams) s.end();
        this.emit('exit', ev.outcome);
        this.exitResolve();
        break;
      default:
        break;
    }
  }

  /** Kill its process group: `signal` (default SIGTERM), then SIGKILL if it is still alive
   * after `grace` ms (decided on the actual exit). Resolves to the final outcome. */
  async kill({ signal = 'SIGTERM', grace = 1000 } = {}) {
    return JSON.parse(await keep(this.native.kill(signal, duration('grace', grace))));
  }

  /** Call `func(...args)` on the running job instance; resolves to its return value. */
  async call(func, ...args) {
    const r = JSON.parse(await keep(this.native.call('', null, String(func), toJson(args, this.job, 'call arguments'))));
    if (r.error) throw makeError(r.error.code === 'Failed' ? 'Failed' : r.error.code, `job ${JSON.stringify(this.job)}: ${func}(): ${r.error.name ? `${r.error.name}: ` : ''}${r.error.message}`, { job: this.job, jobStack: r.error.stack || null, errorName: r.error.name || null });
    return r.value;
  }

  [Symbol.asyncIterator]() {
    const s = new EventStream(() => this.streams.delete(s));
    if (this.exitedOutcome) s.end();
    else this.streams.add(s);
    return s;
  }
}

class ChildJob extends EventEmitter {
  /**
   * @param {{jobs?: string, killSignal?: string, killGrace?: number, node?: string, warmSpare?: boolean}} [opts]
   */
  constructor(opts = {}) {
    super();
    checkOptions('ChildJob', opts, ['jobs', 'killSignal', 'killGrace', 'node', 'warmSpare']);
    this.jobsDir = path.resolve(opts.jobs || './jobs');
    this.resolver = new PathResolver(this.jobsDir);
    this.native = new native.NativeChildJob(
      JSON.stringify({
        jobsDir: this.jobsDir,
        killSignal: opts.killSignal,
        killGraceMs: duration('killGrace', opts.killGrace),
        node: opts.node,
        warmSpare: opts.warmSpare === true,
      }),
      (json) => this._onManager(json),
    );
  }

  _onManager(json) {
    if (this.listenerCount('progress') + this.listenerCount('event') + this.listenerCount('exit') === 0) return;
    let ev;
    try {
      ev = JSON.parse(json);
    } catch {
      return;
    }
    if (ev.event === 'progress') this.emit('progress', ev.data, { pid: ev.pid });
    else if (ev.event === 'event') this.emit('event', ev.name, ev.data, { pid: ev.pid, receiver: ev.receiver });
    else if (ev.event === 'exited') this.emit('exit', ev.pid, ev.outcome);
  }

  /**
   * Start `job` in a new process and return its JobRun at once (`run.result` settles with the
   * job). Throws a typed error for a bad job or params.
   */
  start(job, params, opts = {}) {
    checkOptions('exec', opts, EXEC_OPTIONS);
    const { file, name } = this.resolver.resolve(job);
    const paramsJson = toJson(params, name);
    abortSignal('signal', opts.signal);
    callback('onProgress', opts.onProgress);
    const run = new JobRun(name);
    if (opts.signal && opts.signal.aborted) {
      throw makeError('Cancelled', `job ${JSON.stringify(name)} was aborted before it started`, { job: name, cause: opts.signal.reason });
    }
    try {
      run.native = this.native.exec(file, true, paramsJson, JSON.stringify(execOptions(opts)), (j) => run._onEvent(j));
    } catch (e) {
      throw fromNative(e, name);
    }
    if (typeof opts.onProgress === 'function') run.on('progress', opts.onProgress);
    const { signal } = opts;
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      run.native.kill(opts.killSignal || 'SIGTERM', 1000).catch(() => {});
    };
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    // Settles once the process is gone and its last events were delivered (so every progress
    // event comes before the result).
    run.result = keep(Promise.all([run.native.outcome(), run.exitSeen])).then(([json]) => {
      if (signal) signal.removeEventListener('abort', onAbort);
      const o = fromOutcome(JSON.parse(json), name);
      if (o.ok) return o.value;
      if (aborted) {
        throw makeError('Cancelled', `job ${JSON.stringify(name)} was aborted and killed`, { job: name, outcome: o.error.outcome, cause: signal.reason });
      }
      throw o.error;
    });
    run.result.catch(() => {});
    return run;
  }

  /** Run `job` in a new process; resolves with its result or rejects with a typed error. */
  exec(job, params, opts = {}) {
    try {
      return this.start(job, params, opts).result;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The live processes' pids. */
  pids() {
    return this.native.pids();
  }

  /** Kill every live process (signal, grace, SIGKILL) and wait for them. */
  killAll() {
    return keep(this.native.killAll());
  }

  /** `ChildJob.exec(job, params, {jobs, ...})`: one fresh process, with a ChildJob per jobs folder. */
  static exec(job, params, opts = {}) {
    const { jobs, ...rest } = opts;
    const dir = path.resolve(jobs || './jobs');
    let cj = DEFAULTS.get(dir);
    if (!cj) {
      cj = new ChildJob({ jobs: dir });
      DEFAULTS.set(dir, cj);
    }
    return cj.exec(job, params, rest);
  }
}

const DEFAULTS = new Map();

module.exports = { ChildJob, JobRun, execOptions };
