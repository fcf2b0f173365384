'use strict';
// ChildPool: a supervised pool of resident worker processes (offload_pool::ChildPool).

const { EventEmitter } = require('node:events');
const path = require('node:path');
const native = require('./native');
const { makeError, fromOutcome, fromNative, toJson } = require('./errors');
const { PathResolver } = require('./paths');
const { EventStream, eventsLost } = require('./events');
const { affinityKey, positive, whole, workers, workerPid, duration, abortSignal, callback, checkOptions } = require('./options');
const { keep, hold } = require('./keepalive');
const { healthConfig, killOptions, fdNumbers } = require('./controls');

const POOL_OPTIONS = [
  'jobs', 'program', 'name', 'min', 'max', 'concurrency', 'algorithm', 'weights', 'timeout', 'retries',
  'retryOnError', 'retryDelay', 'recycle', 'idleTimeout', 'killSignal', 'killGrace', 'cancelGrace',
  'queueBound', 'failFast', 'env', 'startTimeout', 'healthInterval', 'maxRestarts', 'restartWindow', 'node',
  'memoryLimit', 'cpuSeconds', 'poisonAfter', 'pingInterval', 'pingTimeout',
];
const RUN_OPTIONS = ['timeout', 'retries', 'key', 'worker', 'signal', 'onProgress', 'events', 'fds'];

/** One job submitted to a pool: an EventEmitter ('started', 'progress', 'event', 'retrying',
 * 'finished') and an async iterator over the same events; `result` settles with the job. */
class Task extends EventEmitter {
  constructor(pool, token, job) {
    super();
    this.pool = pool;
    this.token = token;
    this.job = job;
    this.pid = null;
    this.settled = false;
    this.streams = new Set();
    this.ended = null;
    this.endedResolve = null;
  }

  /** Cancel: a queued job ends at once; a running one gets `cancel`, then its worker is killed
   * after the cancel grace. */
  cancel() {
    if (this.settled) return;
    this.cancelled = true;
    if (this.pool.native) this.pool.native.cancel(this.token);
  }

  _event(ev) {
    const type = ev.event;
    const wrapped = { type, ...ev, id: undefined, job: this.job };
    delete wrapped.id;
    for (const s of this.streams) s.push(wrapped);
    switch (type) {
      case 'started':
        this.pid = ev.pid;
        this.emit('started', { pid: ev.pid, attempt: ev.attempt });
        break;
      case 'progress':
        this.emit('progress', ev.data, { pid: ev.pid, job: this.job });
        this.pool._emitIfListened('progress', ev.data, { pid: ev.pid, job: this.job, task: this });
        break;
      case 'event':
        this.emit('event', ev.name, ev.data, { pid: ev.pid, receiver: ev.receiver, job: this.job });
        break;
      case 'retrying':
        this.emit('retrying', { outcome: ev.outcome, delayMs: Math.round((ev.delay.secs * 1e9 + ev.delay.nanos) / 1e6) });
        break;
      case 'finished':
        this.emit('finished', ev.outcome);
        break;
      default:
        break;
    }
  }

  _end() {
    for (const s of this.streams) s.end();
    if (this.endedResolve) this.endedResolve();
  }

  [Symbol.asyncIterator]() {
    const s = new EventStream(() => this.streams.delete(s));
    if (this.settled) s.end();
    else this.streams.add(s);
    return s;
  }
}

// `uncancellable`: nothing can cancel a light run by its token (the addon keeps no slot for it).
const LIGHT_OPTS = JSON.stringify({ events: false, uncancellable: true });

/** Runs queued in one tick that go to the addon at once, without waiting for the tick's end. */
const FLUSH_AT = 256;

/** A run of `_runLight`: no Task, only its promise's two functions. */
class LightRun {
  constructor(pool, token, job) {
    this.pool = pool;
    this.token = token;
    this.job = job;
    this.cancelled = false;
    this.resolve = null;
    this.reject = null;
  }

  /** A success (`[token, value]` from the addon). */
  done(value) {
    this.pool._settled(this.token);
    this.resolve(value === undefined ? null : value);
  }

  /** Any other answer: `{outcome, attempts}`, `{error}` (refused) or `{startError}`. */
  answer(r) {
    this.pool._settled(this.token);
    if (r.startError) return this.reject(r.startError);
    if (r.error) {
      return this.reject(makeError(r.error.code, `job ${JSON.stringify(this.job)}: ${r.error.message}`, { job: this.job }));
    }
    const o = fromOutcome(r.outcome, this.job, r.attempts);
    if (o.ok) this.resolve(o.value);
    else this.reject(o.error);
    return undefined;
  }
}

class ChildPool extends EventEmitter {
  /**
   * @param {object} opts see index.d.ts (`PoolOptions`)
   */
  constructor(opts = {}) {
    super();
    checkOptions('ChildPool', opts, POOL_OPTIONS);
    this.jobsDir = path.resolve(opts.jobs || './jobs');
    this.program = opts.program ? path.resolve(opts.program) : null;
    this.resolver = this.program ? null : new PathResolver(this.jobsDir);
    const config = {
      jobsDir: this.jobsDir,
      program: this.program || undefined,
      name: opts.name,
      min: workers('min', opts.min),
      max: workers('max', opts.max, 1),
      concurrency: positive('concurrency', opts.concurrency),
      algorithm: opts.algorithm,
      weights: opts.weights,
      timeoutMs: duration('timeout', opts.timeout),
      attempts: opts.retries === undefined ? undefined : whole('retries', opts.retries) + 1,
      retryOnError: opts.retryOnError,
      retryDelayMs: duration('retryDelay', opts.retryDelay),
      ...healthConfig(opts),
      idleTimeoutMs: duration('idleTimeout', opts.idleTimeout),
      killSignal: opts.killSignal,
      killGraceMs: duration('killGrace', opts.killGrace),
      cancelGraceMs: duration('cancelGrace', opts.cancelGrace),
      queueBound: positive('queueBound', opts.queueBound),
      failFast: opts.failFast,
      env: opts.env,
      startTimeoutMs: duration('startTimeout', opts.startTimeout),
      healthIntervalMs: duration('healthInterval', opts.healthInterval),
      maxRestarts: whole('maxRestarts', opts.maxRestarts),
      restartIntervalMs: duration('restartWindow', opts.restartWindow),
      node: opts.node,
      memoryLimit: positive('memoryLimit', opts.memoryLimit),
      cpuSeconds: positive('cpuSeconds', opts.cpuSeconds),
      poisonAfter: positive('poisonAfter', opts.poisonAfter),
    };
    if (config.max === undefined && config.min !== undefined) config.max = Math.max(config.min, 4);
    this.native = null;
    this.tasks = new Map();
    this.nextToken = 0;
    this.closed = false;
    this.schedules = new Set();
    this.streams = new Set();
    /** Tokens of the runs in `batch` (the JSON items, comma-separated) not yet sent. */
    this.pending = [];
    this.batch = '';
    this.flushScheduled = false;
    /** `JSON.stringify` of job names, by name. */
    this.nameJson = new Map();
    this.waitingReady = false;
    this.loopHold = null;
    /** Resolves with the pool once `min` workers are ready; rejects with a StartFailedError. */
    this.ready = keep(native.startPool(JSON.stringify(config), (json) => this._onNative(json)).then(
      (p) => {
        this.native = p;
        // Results read on this thread come straight here (see `src/js_answers.rs`).
        p.directResults((json) => this._onNative(json));
        for (const t of this.tasks.values()) if (t.cancelled) p.cancel(t.token);
        // The pool's own `online` event fired before this listener existed.
        process.nextTick(() => this._emitIfListened('online', p.pids().length));
        return this;
      },
      (e) => {
        throw fromNative(e);
      },
    ));
    this.ready.catch(() => {}); // surfaced by run() and `await pool.ready`
  }

  /** A pool whose `min` workers are ready. */
  static async start(opts) {
    const pool = new ChildPool(opts);
    return pool.ready;
  }

  _emitIfListened(name, ...args) {
    if (this.listenerCount(name) > 0) this.emit(name, ...args);
  }

  _onNative(json) {
    // Answers of runs without events wait in the addon: one "drain" call, then they are taken
    // all at once (see `src/runs.rs`).
    if (json === 'drain') {
      if (!this.native) return;
      json = this.native.takeResults();
    }
    let m;
    try {
      m = JSON.parse(json);
    } catch {
      return;
    }
    if (m.results) {
      // A success is `[token, value]`; anything else `{token, ...}` (see `runs.rs`).
      for (const r of m.results) {
        if (Array.isArray(r)) {
          const t = this.tasks.get(r[0]);
          if (t === undefined) continue;
          if (t.done !== undefined) t.done(r[1]);
          else if (t.answer) t.answer({ outcome: { outcome: 'succeeded', value: r[1] } });
          continue;
        }
        const t = this.tasks.get(r.token);
        if (t && t.answer) t.answer(r);
      }
      return;
    }
    if (m.token !== undefined) {
      const t = this.tasks.get(m.token);
      if (!t) return;
      // Only a Task has events (a light run asked for none).
      if (m.end) { if (t._end) t._end(); } else if (m.job && t._event) t._event(m.job);
      else if (m.lost) {
        eventsLost(m.lost);
        if (t._event) t.emit('lost', m.lost);
      }
      return;
    }
    if (m.lost) return eventsLost(m.lost);
    if (m.pool) this._onPool(m.pool);
    else if (m.poolJob) {
      const ev = m.poolJob;
      for (const s of this.streams) s.push({ type: 'event', name: ev.name, data: ev.data, pid: ev.pid, receiver: ev.receiver });
      this._emitIfListened('event', ev.name, ev.data, { pid: ev.pid, receiver: ev.receiver });
    }
  }

  _onPool(ev) {
    const out = { type: ev.event, ...ev };
    delete out.event;
    for (const s of this.streams) s.push(out);
    if (ev.event === 'worker_spawned') this._emitIfListened('workerSpawned', ev.pid, ev.index);
    else if (ev.event === 'worker_ready') this._emitIfListened('workerReady', ev.pid);
    else if (ev.event === 'worker_exited') this._emitIfListened('workerExited', ev.pid, ev.outcome, ev.expected);
    else if (ev.event === 'worker_recycled') this._emitIfListened('workerRecycled', ev.pid, ev.reason);
    else if (ev.event === 'worker_unresponsive') {
      this._emitIfListened('workerUnresponsive', ev.pid, Math.round(ev.waited.secs * 1000 + ev.waited.nanos / 1e6));
    } else if (ev.event === 'worker_killed') this._emitIfListened('workerKilled', ev.pid, ev.mode.mode);
    else if (ev.event === 'degraded') this._emitIfListened('degraded', ev.restarts);
    else if (ev.event === 'recovered') this._emitIfListened('recovered');
  }

  _jobName(job) {
    if (!this.resolver) {
      if (typeof job !== 'string' || job === '') {
        throw makeError('InvalidJob', `job ${JSON.stringify(job)}: a job name is a non-empty string`, { job });
      }
      return job;
    }
    return this.resolver.resolve(job).name;
  }

  /**
   * Submit a job; returns its Task at once (events, cancel, `result`).
   * @param {string} job a job name in the jobs folder, or a path inside it
   * @param {unknown} params JSON-serialisable
   * @param {{timeout?: number, retries?: number, key?: string, worker?: number, signal?: AbortSignal, onProgress?: Function}} [opts]
   */
  submit(job, params, opts = {}) {
    const token = (this.nextToken = (this.nextToken + 1) >>> 0 || 1);
    const task = new Task(this, token, typeof job === 'string' ? job : Object.prototype.toString.call(job));
    const fail = (e) => {
      task.settled = true;
      task._end();
      task.result = Promise.reject(e);
      task.result.catch(() => {});
      return task;
    };
    let name;
    let paramsJson;
    let runOpts;
    let fds;
    try {
      checkOptions('run', opts, RUN_OPTIONS);
      if (this.closed) throw makeError('ShuttingDown', `job ${JSON.stringify(job)}: the pool is shut down`, { job });
      name = this._jobName(job);
      task.job = name;
      paramsJson = toJson(params, name);
      if (opts.key !== undefined) affinityKey(name, opts.key);
      runOpts = {
        timeoutMs: duration('timeout', opts.timeout),
        attempts: opts.retries === undefined ? undefined : whole('retries', opts.retries) + 1,
        key: opts.key,
        worker: workerPid('worker', opts.worker),
        events: opts.events !== false,
      };
      if (opts.fds !== undefined) fds = fdNumbers(opts.fds, name);
      abortSignal('signal', opts.signal);
      callback('onProgress', opts.onProgress);
    } catch (e) {
      return fail(e);
    }
    const { signal } = opts;
    if (signal && signal.aborted) {
      return fail(makeError('Cancelled', `job ${JSON.stringify(name)} was aborted before it started`, { job: name, cause: signal.reason }));
    }
    if (typeof opts.onProgress === 'function') task.on('progress', opts.onProgress);
    const onAbort = () => task.cancel();
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    this.tasks.set(token, task);
    if (this.tasks.size === 1) this.loopHold = hold();
    if (runOpts.events) task.ended = new Promise((r) => (task.endedResolve = r));
    const answered = new Promise((resolve) => (task.answer = resolve));
    if (fds === undefined) {
      this._enqueue(token, name, `[${token},${JSON.stringify(name)},${paramsJson},${JSON.stringify(runOpts)}]`);
    } else {
      this._runWithFds(task, fds, paramsJson, runOpts);
    }
    task.result = answered
      .then(async (r) => {
        if (r.startError) throw r.startError;
        if (r.error) {
          throw makeError(r.error.code, `job ${JSON.stringify(name)}: ${r.error.message}`, { job: name });
        }
        if (task.ended) await task.ended;
        const o = fromOutcome(r.outcome, name, r.attempts);
        if (o.ok) return o.value;
        if (signal && signal.aborted && o.error.code === 'Cancelled') o.error.cause = signal.reason;
        throw o.error;
      })
      .finally(() => {
        task.settled = true;
        task._end();
        this.tasks.delete(token);
        if (this.tasks.size === 0 && this.loopHold) {
          this.loopHold();
          this.loopHold = null;
        }
        if (signal) signal.removeEventListener('abort', onAbort);
      });
    task.result.catch(() => {}); // the caller's await sees it; no unhandled rejection here
    return task;
  }

  /** A run with descriptors: they are copied now (the caller may close its handles at once)
   * and go with the run to its worker (`docs/protocol.md` §9); such a run has one attempt. */
  _runWithFds(task, fds, paramsJson, runOpts) {
    let key;
    try {
      key = native.holdFds(fds);
    } catch (e) {
      task.answer({ startError: fromNative(e, task.job) });
      return;
    }
    const opts = JSON.stringify({ ...runOpts, fds: key });
    this.ready
      .then((p) => keep(p.native.run(task.token, task.job, paramsJson, opts)))
      .then((json) => task.answer(JSON.parse(json)), (e) => task.answer({ startError: fromNative(e, task.job) }))
      .finally(() => native.dropFds(key));
  }

  /** Runs submitted in the same tick go to the addon in one call (`submitMany`); their results
   * come back batched through the event callback. */
  _enqueue(token, name, item) {
    this.pending.push(token);
    this.batch = this.batch === '' ? item : `${this.batch},${item}`;
    // A long synchronous loop of runs goes out every FLUSH_AT runs: the pool and its workers
    // start on the first ones while JavaScript still submits the rest (one batch of 100,000
    // left the workers idle until the loop ended).
    if (this.pending.length >= FLUSH_AT && this.native) {
      this._flush();
      return;
    }
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => this._flush());
  }

  _flush() {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    if (!this.native) {
      if (!this.waitingReady) {
        this.waitingReady = true;
        this.ready.then(
          () => {
            this.waitingReady = false;
            this._flush();
          },
          (e) => {
            this.batch = '';
            for (const token of this.pending.splice(0)) {
              const t = this.tasks.get(token);
              if (t) t.answer({ startError: e });
            }
          },
        );
      }
      return;
    }
    const tokens = this.pending;
    const batch = this.batch;
    this.pending = [];
    this.batch = '';
    try {
      this.native.submitMany(`[${batch}]`);
    } catch (e) {
      for (const token of tokens) {
        const t = this.tasks.get(token);
        if (t) t.answer({ startError: fromNative(e, t.job) });
      }
    }
  }

  /** Run a job and resolve with its result (or reject with a typed error naming it). */
  run(job, params, opts = {}) {
    if (opts !== null && typeof opts === 'object' && opts.events === false
        && opts.signal === undefined && opts.onProgress === undefined && opts.fds === undefined) {
      return this._runLight(job, params, opts);
    }
    return this.submit(job, params, opts).result;
  }

  /** `run` with `events: false` and neither `signal` nor `onProgress`: nothing can observe a
   * Task, so none is made — a token, one record and one promise per job (the hot path of many
   * tiny jobs; same validation, errors and results as `submit`). */
  _runLight(job, params, opts) {
    const token = (this.nextToken = (this.nextToken + 1) >>> 0 || 1);
    let name = typeof job === 'string' ? job : Object.prototype.toString.call(job); // a toString may throw
    let item;
    try {
      checkOptions('run', opts, RUN_OPTIONS);
      if (this.closed) throw makeError('ShuttingDown', `job ${JSON.stringify(job)}: the pool is shut down`, { job });
      name = this._jobName(job);
      const paramsJson = toJson(params, name);
      if (opts.key !== undefined) affinityKey(name, opts.key);
      // Without timeout, retries, key or worker (the usual case) the options are always the
      // same text.
      const runOpts = opts.timeout === undefined && opts.retries === undefined && opts.key === undefined
        && opts.worker === undefined
        ? LIGHT_OPTS
        : JSON.stringify({
          timeoutMs: duration('timeout', opts.timeout),
          attempts: opts.retries === undefined ? undefined : whole('retries', opts.retries) + 1,
          key: opts.key,
          worker: workerPid('worker', opts.worker),
          events: false,
          uncancellable: true,
        });
      let nameJson = this.nameJson.get(name);
      if (nameJson === undefined) {
        nameJson = JSON.stringify(name);
        if (this.nameJson.size < 1024) this.nameJson.set(name, nameJson);
      }
      item = `[${token},${nameJson},${paramsJson},${runOpts}]`;
    } catch (e) {
      return Promise.reject(e);
    }
    const run = new LightRun(this, token, name);
    const promise = new Promise((resolve, reject) => {
      run.resolve = resolve;
      run.reject = reject;
    });
    this.tasks.set(token, run);
    if (this.tasks.size === 1) this.loopHold = hold();
    this._enqueue(token, name, item);
    return promise;
  }

  /** Forgets a settled run's token (and lets the event loop go when none is left). */
  _settled(token) {
    this.tasks.delete(token);
    if (this.tasks.size === 0 && this.loopHold) {
      this.loopHold();
      this.loopHold = null;
    }
  }

  /** Pool events (worker lifecycle, named job events) as an async iterator. */
  events() {
    const s = new EventStream(() => this.streams.delete(s));
    this.streams.add(s);
    return s;
  }

  /** Send an event to every ready worker; resolves to `{pid: acked}`. */
  async broadcast(name, data, { timeout = 5000 } = {}) {
    if (typeof name !== 'string' || name === '') throw makeError('InvalidArgument', 'broadcast: the event name must be a non-empty string');
    const p = await this.ready;
    const json = await keep(p.native.broadcast(name, toJson(data, name, 'data'), duration('timeout', timeout)));
    const acks = JSON.parse(json);
    const out = {};
    for (const [pid, ok] of Object.entries(acks)) out[pid] = ok;
    return out;
  }

  /** Set the number of workers, at most MAX_WORKERS (started or retired, idle first, never
   * killing a running job). */
  async resize(n) {
    if (n === undefined || n === null) throw makeError('InvalidArgument', 'resize: the number of workers is required');
    const size = workers('n', n);
    const p = await this.ready;
    await keep(p.native.resize(size));
  }

  /** Replace every worker (after job files changed). */
  async recycle() {
    const p = await this.ready;
    if (this.resolver) this.resolver.clear();
    await keep(p.native.recycleAll());
  }

  /** The live workers: pid, index, state, rss (bytes, whole process tree), cpu (% of a core),
   * heapUsed / heapTotal (bytes, from the last pong; null until one), jobs in flight, … */
  async workers() {
    const p = await this.ready;
    return JSON.parse(await keep(p.native.health())).map((w) => ({
      pid: w.pid,
      index: w.index,
      state: w.state,
      rss: w.rss,
      cpu: w.cpu,
      heapUsed: w.heap_used === undefined ? null : w.heap_used,
      heapTotal: w.heap_total === undefined ? null : w.heap_total,
      processes: w.processes,
      jobs: w.in_flight,
      jobsDone: w.jobs_done,
      failures: w.failures,
      restarts: w.restarts,
      uptimeMs: Math.round(w.uptime.secs * 1000 + w.uptime.nanos / 1e6),
      lastError: w.last_error,
    }));
  }

  /** The live workers' pids. */
  pids() {
    return this.native ? this.native.pids() : [];
  }

  /** Jobs waiting in the queue. */
  async queued() {
    const p = await this.ready;
    return keep(p.native.queued());
  }

  /** Kill one worker; the pool starts its replacement. Resolves false for a pid that is not
   * one of its workers. `mode: 'soft'`: the worker gets `shutdown` (no new jobs; running ones
   * and its shutdown hook may finish), `mode: 'hard'`: the kill notice (running jobs end);
   * either ends in SIGKILL after `grace` ms. Without `mode`: `signal` (default SIGTERM), then
   * SIGKILL after `grace`. */
  async killWorker(pid, opts = {}) {
    const p = await this.ready;
    if (opts.mode === undefined) {
      checkOptions('killWorker', opts, ['signal', 'grace']);
      return p.native.killWorker(pid, opts.signal || 'SIGTERM', duration('grace', opts.grace === undefined ? 5000 : opts.grace));
    }
    if (opts.signal !== undefined) throw makeError('InvalidArgument', 'killWorker: give either "mode" or "signal", not both');
    const { mode, grace } = killOptions('killWorker', opts, false);
    try {
      return await keep(p.native.killWorkerMode(whole('pid', pid), mode, grace));
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** Kill every worker, `mode` soft or hard (default hard), `order` 'parallel' (default) or
   * 'sequence' (the next once the previous is gone), `grace` ms before SIGKILL (default
   * 5000), and end the pool: queued jobs fail; with a soft kill running ones may finish within
   * the grace. Resolves when no worker is left. */
  async killAll(opts = {}) {
    const { mode, grace, order } = killOptions('killAll', opts, true);
    this.closed = true;
    await Promise.allSettled([...this.schedules].map((s) => s.stop({ deadline: 0 })));
    let p;
    try {
      p = await this.ready;
    } catch {
      return;
    }
    try {
      await keep(p.native.killAll(mode, grace, order));
    } finally {
      for (const s of this.streams) s.end();
    }
  }

  /** Runs `job` with `params` periodically on this pool (`every` ms or a `cron` expression);
   * see lib/schedule.js and index.d.ts (`ScheduleOptions`). Returns a Schedule at once. */
  schedule(job, params, opts) {
    if (this.closed) throw makeError('ShuttingDown', 'the pool is shut down');
    const { Schedule } = require('./schedule');
    const s = new Schedule(this, job, params, opts);
    this.schedules.add(s);
    s.once('stopped', () => this.schedules.delete(s));
    s.ready.catch(() => this.schedules.delete(s));
    return s;
  }

  /** Stop accepting jobs (and stop the schedules), let running ones finish until `deadline`
   * ms, then kill the rest. */
  async shutdown({ deadline = 5000 } = {}) {
    this.closed = true;
    const ms = duration('deadline', deadline);
    await Promise.allSettled([...this.schedules].map((s) => s.stop({ deadline: ms })));
    let p;
    try {
      p = await this.ready;
    } catch {
      return;
    }
    await keep(p.native.shutdown(duration('deadline', deadline)));
    for (const s of this.streams) s.end();
  }

  /** Kill every worker at once; running and queued jobs fail. */
  async kill() {
    this.closed = true;
    await Promise.allSettled([...this.schedules].map((s) => s.stop({ deadline: 0 })));
    let p;
    try {
      p = await this.ready;
    } catch {
      return;
    }
    await keep(p.native.kill());
    for (const s of this.streams) s.end();
  }
}

module.exports = { ChildPool, Task };
