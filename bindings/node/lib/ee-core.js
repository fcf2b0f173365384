'use strict';
// ee-core's jobs API (ChildJob, ChildPoolJob, JobProcess, LoadBalancer, AlgorithmType) on
// offload's supervised processes: switch by changing one require (or aliasing `ee-core/jobs`).
// Job paths are written ee-core's way (`./jobs/example/timer`), relative to a base folder
// (option `baseDir`, default the working directory); a path leaving it is refused.
//
// Differences from ee-core, all bug fixes (../README.md lists them): kill(timeout) escalates to
// SIGKILL on the actual exit; children never outlive the host; the pool enforces `max`, replaces
// dead children and cleans `boundMap`; job failures are reported (`error` events, when listened).

const { EventEmitter } = require('node:events');
const path = require('node:path');
const native = require('./native');
const { makeError, fromOutcome, fromNative, toJson } = require('./errors');
const { MAX_WORKERS } = require('./options');
const { eventsLost } = require('./events');
const { PathResolver } = require('./paths');
const { LoadBalancer, AlgorithmType } = require('./balancer');
const { keep, hold } = require('./keepalive');

/** ee-core's JobProcessOptions ({processArgs, processOptions: {env, cwd}}) plus `timeout`. */
function processOptions(opt = {}) {
  const po = opt.processOptions || {};
  const env = {};
  for (const [k, v] of Object.entries(po.env || {})) if (typeof v === 'string') env[k] = v;
  return {
    timeoutMs: typeof opt.timeout === 'number' ? Math.round(opt.timeout) : undefined,
    env,
    cwd: typeof po.cwd === 'string' ? po.cwd : undefined,
    args: Array.isArray(opt.processArgs) ? opt.processArgs.map(String) : [],
  };
}

function emitError(emitters, err) {
  for (const e of emitters) if (e && e.listenerCount('error') > 0) e.emit('error', err);
}

/** One child process (ee-core's JobProcess entity). */
class JobProcess {
  constructor(host, { job = null } = {}) {
    this.host = host;
    this.job = job;
    this.emitter = new EventEmitter();
    this.native = null;
    this.pid = undefined;
    this.exitOutcome = null;
    const self = this;
    /** A stand-in for ee-core's `child` (a ChildProcess): pid, kill(), connected. */
    this.child = {
      get pid() {
        return self.pid;
      },
      get connected() {
        return self.exitOutcome === null;
      },
      kill(signal = 'SIGTERM') {
        self.host._killPid(self, signal === 'SIGKILL' ? 'SIGKILL' : String(signal), 1000);
        return true;
      },
    };
  }

  _onProcessEvent(ev) {
    if (ev.event === 'event') {
      if (ev.receiver === 'task' || ev.receiver === 'all') this.emitter.emit(ev.name, ev.data);
    } else if (ev.event === 'lost') {
      eventsLost(ev.lost);
    } else if (ev.event === 'exited') {
      this.exitOutcome = ev.outcome;
      this.host._exited(this, ev.outcome);
      this.emitter.emit('exit', ev.outcome);
      if (this.release) this.release();
    }
  }

  /** Send a `run` of `jobPath` with positional `params` (ee-core's dispatch). */
  dispatch(cmd, jobPath = '', ...params) {
    return this.host._dispatch(this, cmd, jobPath, params);
  }

  /** Call `funcName(...params)` on the job instance in the child (ee-core's callFunc). Returns
   * a promise of the function's value (undefined on failure: `error` events report it). */
  callFunc(jobPath = '', funcName = '', ...params) {
    return this.host._callFunc(this, jobPath, funcName, params);
  }

  /** SIGINT, then SIGKILL if the child is still alive after `timeout` ms (on its actual exit). */
  kill(timeout = 1000) {
    return this.host._killPid(this, 'SIGINT', timeout);
  }
}

class ChildJob extends EventEmitter {
  /** @param {{baseDir?: string, timeout?: number}} [opt] */
  constructor(opt = {}) {
    super();
    this.baseDir = path.resolve(opt.baseDir || process.cwd());
    this.resolver = new PathResolver(this.baseDir);
    /** Live JobProcesses by pid. */
    this.jobs = {};
    this.config = { timeout: opt.timeout };
    this.native = new native.NativeChildJob(
      JSON.stringify({ jobsDir: this.baseDir, killSignal: 'SIGINT', killGraceMs: 1000 }),
      (json) => this._onManager(json),
    );
  }

  _onManager(json) {
    let ev;
    try {
      ev = JSON.parse(json);
    } catch {
      return;
    }
    if (ev.event === 'event' && (ev.receiver === 'job' || ev.receiver === 'all')) this.emit(ev.name, ev.data);
  }

  _start(jp, startFn, job) {
    let proc;
    try {
      proc = startFn((json) => {
        let ev;
        try {
          ev = JSON.parse(json);
        } catch {
          return;
        }
        jp._onProcessEvent(ev);
      });
    } catch (e) {
      throw fromNative(e, job || undefined);
    }
    jp.native = proc;
    jp.pid = proc.pid;
    this.jobs[jp.pid] = jp;
    // Like ee-core's forked children, a live job keeps the host running: until its `exited`
    // event was delivered, and one more turn for the manager's events queued before it.
    const release = hold();
    jp.release = () => setTimeout(release, 20);
    if (job) {
      proc.outcome().then((json) => {
        const o = fromOutcome(JSON.parse(json), job);
        if (!o.ok) emitError([jp.emitter, this], o.error);
      });
    }
    return jp;
  }

  /** Start a child running the job file `filepath` with `params`; returns its JobProcess at once.
   * Throws a typed error (InvalidJob, JobNotFound, InvalidArgument) for bad input. */
  exec(filepath, params = {}, opt = {}) {
    const { file, name } = this.resolver.resolve(filepath);
    const paramsJson = toJson(params, name);
    const o = processOptions({ timeout: this.config.timeout, ...opt });
    const jp = new JobProcess(this, { job: name });
    return this._start(jp, (cb) => this.native.exec(file, true, paramsJson, JSON.stringify(o), cb), name);
  }

  /** exec() as a promise (rejects instead of throwing). */
  execPromise(filepath, params = {}, opt = {}) {
    return new Promise((resolve) => resolve(this.exec(filepath, params, opt)));
  }

  /** A child with no job yet: send it work with `dispatch('run', jobPath, ...params)`. */
  createProcess(opt = {}) {
    const o = processOptions(opt);
    const jp = new JobProcess(this);
    return this._start(jp, (cb) => this.native.createProcess(JSON.stringify(o), cb), null);
  }

  /** The live children's pids, as strings (ee-core's shape). */
  getPids() {
    return Object.keys(this.jobs);
  }

  /** A live child by pid, or null. */
  getChildByPid(pid) {
    return this.jobs[pid] || null;
  }

  /** Kill every child (SIGINT, then SIGKILL after 1 s). */
  killAll() {
    return keep(this.native.killAll());
  }

  _exited(jp, outcome) {
    if (this.jobs[jp.pid] === jp) delete this.jobs[jp.pid];
    if (this.listenerCount('exit') > 0) this.emit('exit', jp.pid, outcome);
  }

  _dispatch(jp, cmd, jobPath, params) {
    const { file, name } = this.resolver.resolve(jobPath);
    try {
      return jp.native.dispatch(String(cmd), name, file, toJson(params, name));
    } catch (e) {
      throw fromNative(e, name);
    }
  }

  _callFunc(jp, jobPath, funcName, params) {
    let target;
    try {
      target = jobPath ? this.resolver.resolve(jobPath) : { file: null, name: jp.job || '' };
    } catch (e) {
      emitError([jp.emitter, this], e);
      return Promise.resolve(undefined);
    }
    return keep(jp.native.call(target.name, target.file, String(funcName), toJson(params, target.name, 'arguments'))).then(
      (json) => {
        const r = JSON.parse(json);
        if (!r.error) return r.value;
        emitError([jp.emitter, this], makeError(r.error.code, `job ${JSON.stringify(target.name)}: ${funcName}(): ${r.error.message}`, { job: target.name, jobStack: r.error.stack || null }));
        return undefined;
      },
      () => undefined,
    );
  }

  _killPid(jp, signal, timeout) {
    if (!jp.native) return Promise.resolve(null);
    return keep(jp.native.kill(signal, Math.max(0, Math.round(Number(timeout) || 0)))).then((j) => JSON.parse(j), () => null);
  }
}

class ChildPoolJob extends EventEmitter {
  /** @param {{weights?: number[], max?: number, strategy?: string, baseDir?: string}} [opt] */
  constructor(opt = {}) {
    super();
    this.baseDir = path.resolve(opt.baseDir || process.cwd());
    this.resolver = new PathResolver(this.baseDir);
    this.children = {};
    this.boundMap = new Map();
    this.min = 3;
    this.max = Number.isSafeInteger(opt.max) && opt.max > 0 ? opt.max : 6;
    if (this.max > MAX_WORKERS) {
      throw makeError('InvalidArgument', `ChildPoolJob: "max" is ${this.max}, at most ${MAX_WORKERS} (MAX_WORKERS)`);
    }
    this.strategy = opt.strategy || AlgorithmType.polling;
    this.weights = Array.isArray(opt.weights) ? opt.weights : [];
    this.LB = new LoadBalancer({ targets: [], algorithm: this.strategy === 'specify' ? 'polling' : this.strategy });
    this.pool = null;
    this.starting = null;
    this.keepAlive = null;
    this.tokens = new Map();
    this.nextToken = 0;
  }

  _onNative(json) {
    let m;
    try {
      m = JSON.parse(json);
    } catch {
      return;
    }
    if (m.worker !== undefined) {
      const jp = this.children[m.worker];
      if (jp) jp._onProcessEvent(m.process);
    } else if (m.poolJob) {
      const ev = m.poolJob;
      if (ev.receiver === 'job' || ev.receiver === 'all') this.emit(ev.name, ev.data);
    } else if (m.lost) {
      eventsLost(m.lost);
    } else if (m.pool) {
      const ev = m.pool;
      if (ev.event === 'worker_ready') this._adopt(ev.pid);
    } else if (m.token !== undefined) {
      const t = this.tokens.get(m.token);
      if (t && m.job && m.job.event === 'started') t.started(m.job.pid);
    }
  }

  _adopt(pid) {
    if (this.children[pid] || !this.pool) return this.children[pid];
    const jp = new JobProcess(this);
    jp.pid = pid;
    this.children[pid] = jp;
    this.pool.watchWorker(pid);
    const i = Object.keys(this.children).length - 1;
    try {
      this.LB.add({ id: pid, weight: this.weights[i] === undefined ? 1 : this.weights[i] });
    } catch {
      // already there
    }
    return jp;
  }

  _exited(jp) {
    if (this.children[jp.pid] === jp) delete this.children[jp.pid];
    this.LB.del(jp.pid);
    for (const [k, pid] of this.boundMap) if (pid === jp.pid) this.boundMap.delete(k);
  }

  async _ensure(n) {
    if (!this.pool) {
      if (!this.starting) {
        this.starting = keep(
          native.startPool(
            JSON.stringify({ jobsDir: this.baseDir, min: n, max: this.max, algorithm: this.strategy === 'specify' ? 'polling' : this.strategy, weights: this.weights, killSignal: 'SIGINT', killGraceMs: 1000 }),
            (json) => this._onNative(json),
          ),
        ).then(
          (p) => {
            this.pool = p;
            if (!this.keepAlive) this.keepAlive = hold();
            for (const pid of p.pids()) this._adopt(pid);
          },
          (e) => {
            this.starting = null;
            throw fromNative(e);
          },
        );
      }
      return this.starting;
    }
    await keep(this.pool.resize(n));
    for (let i = 0; i < 600 && this.pool.pids().length < n; i++) await new Promise((r) => setTimeout(r, 50));
    for (const pid of this.pool.pids()) this._adopt(pid);
    return undefined;
  }

  /** Start `number` more children (never above `max`); resolves to every pid, as strings. */
  async create(number = 3) {
    const have = this.pool ? this.pool.pids().length : 0;
    const want = Math.min(this.max, have + Math.max(0, Math.floor(Number(number) || 0)));
    if (want > have || !this.pool) await this._ensure(Math.max(want, 1));
    return this.getPids();
  }

  /** Run the job file `filepath` on a child chosen by the pool; resolves to that child's
   * JobProcess once the job has started on it. Rejects with a typed error for bad input. */
  async run(filepath, params = {}, opt = {}) {
    const { name } = this.resolver.resolve(filepath);
    const paramsJson = toJson(params, name);
    if (!this.pool) await this.create(1);
    const token = (this.nextToken = (this.nextToken + 1) >>> 0 || 1);
    return new Promise((resolve, reject) => {
      let started = false;
      this.tokens.set(token, {
        started: (pid) => {
          if (started) return;
          started = true;
          resolve(this._adopt(pid) || this.children[pid]);
        },
      });
      const runOpts = { events: true, key: opt.boundId === undefined ? undefined : String(opt.boundId) };
      keep(this.pool.run(token, name, paramsJson, JSON.stringify(runOpts))).then(
        (json) => {
          this.tokens.delete(token);
          const r = JSON.parse(json);
          const err = r.error
            ? makeError(r.error.code, `job ${JSON.stringify(name)}: ${r.error.message}`, { job: name })
            : fromOutcome(r.outcome, name, r.attempts).error;
          if (!started) {
            if (err) reject(err);
            else {
              const pid = r.attempts && r.attempts.length ? r.attempts[r.attempts.length - 1].pid : undefined;
              resolve(this.children[pid] || null);
            }
          } else if (err) emitError([this], err);
        },
        (e) => {
          this.tokens.delete(token);
          if (!started) reject(fromNative(e, name));
        },
      );
    });
  }

  /** Alias of run(). */
  runPromise(filepath, params = {}, opt = {}) {
    return this.run(filepath, params, opt);
  }

  /** The child bound to `boundId` (the same one while it lives; rebound when it dies). */
  async getBoundChild(boundId) {
    if (!this.pool) await this.create(1);
    let pid;
    try {
      pid = await keep(this.pool.boundChild(String(boundId)));
    } catch (e) {
      throw fromNative(e);
    }
    if (pid === null || pid === undefined) return null;
    // Most recently bound last; as many keys as the native pool keeps (MAX_BINDINGS).
    this.boundMap.delete(boundId);
    this.boundMap.set(boundId, pid);
    if (this.boundMap.size > native.MAX_BINDINGS) this.boundMap.delete(this.boundMap.keys().next().value);
    const jp = this._adopt(pid) || this.children[pid];
    if (jp) jp.boundId = boundId;
    return jp;
  }

  /** A child chosen by the load balancer (creating one if the pool is empty). */
  async getChild() {
    if (!this.pool || this.pool.pids().length === 0) await this.create(1);
    const t = this.LB.pickOne();
    return (t && this.children[t.id]) || Object.values(this.children)[0] || null;
  }

  /** A child by pid, or null. */
  getChildByPid(pid) {
    return this.children[pid] || null;
  }

  /** The children's pids, as strings. */
  getPids() {
    return this.pool ? this.pool.pids().map(String) : [];
  }

  /** Kill every child: `type` 'parallel' (at once, the default) or 'sequence' (the next once
   * the previous is gone), as ee-core; each gets the kill notice, then SIGKILL after 1 s. */
  killAll(type = 'parallel') {
    const p = this.pool;
    const order = type === 'sequence' ? 'sequence' : 'parallel';
    const done = p ? keep(p.killAll('hard', 1000, order)) : Promise.resolve();
    return done.then(() => {
      // As in ee-core, the pool stays usable: the next run or create starts new children (a
      // killed native pool refuses every run, so it is dropped).
      if (this.pool === p) {
        this.pool = null;
        this.starting = null;
      }
      this.children = {};
      this.boundMap.clear();
      this.LB.wipe();
      if (this.keepAlive) this.keepAlive();
      this.keepAlive = null;
    });
  }

  _dispatch(jp, cmd, jobPath, params) {
    if (cmd !== 'run') throw makeError('InvalidArgument', `unknown command ${JSON.stringify(cmd)}: only "run" exists`);
    const { name } = this.resolver.resolve(jobPath);
    const token = (this.nextToken = (this.nextToken + 1) >>> 0 || 1);
    // On this child, as ee-core sends it to that process (it waits while the child is busy;
    // an `error` event when the child is gone), with every argument as ee-core's jobParams.
    const args = toJson(params, name, 'arguments');
    const opts = `{"events":false,"worker":${Number(jp.pid)},"args":${args}}`;
    keep(this.pool.run(token, name, toJson(params.length ? params[0] : null, name), opts)).then(
      (json) => {
        const r = JSON.parse(json);
        const err = r.error ? makeError(r.error.code, r.error.message, { job: name }) : fromOutcome(r.outcome, name).error;
        if (err) emitError([jp.emitter, this], err);
      },
      () => {},
    );
    return String(token);
  }

  _callFunc(jp, jobPath, funcName, params) {
    try {
      const { name, file } = this.resolver.resolve(jobPath);
      return Promise.resolve(this.pool.callWorker(jp.pid, name, file, String(funcName), toJson(params, name, 'arguments')) ? undefined : undefined);
    } catch (e) {
      emitError([jp.emitter, this], e);
      return Promise.resolve(undefined);
    }
  }

  _killPid(jp, signal, timeout) {
    if (!this.pool) return Promise.resolve(null);
    this.pool.killWorker(jp.pid, signal, Math.max(0, Math.round(Number(timeout) || 0)));
    return Promise.resolve(null);
  }
}

module.exports = { ChildJob, ChildPoolJob, JobProcess, LoadBalancer, AlgorithmType };
