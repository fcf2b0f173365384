'use strict';
// The worker side of protocol v1 (docs/protocol.md) over Node's IPC channel: the supervisor
// starts `node runner.js` with NODE_CHANNEL_FD=3 and NODE_CHANNEL_SERIALIZATION_MODE=json, so
// Node itself opens fd 3 and frames one JSON object per line; this module reads frames with
// process.on('message') and writes them through lib/channel.js (one write per tick).

const path = require('node:path');
const util = require('node:util');
const state = require('./state');
const { Holder } = require('./lifecycle');
const {
  CancelledError,
  DeadlineExceededError,
  ShuttingDownError,
  FrameTooLargeError,
  BusyError,
  isAbort,
  serializeError,
} = require('./errors');
const {
  PROTOCOL,
  PROTOCOL_MINOR,
  CAPABILITIES,
  DEFAULT_MAX_FRAME,
  DEFAULT_GRACE_MS,
  CANCEL_WAIT_MS,
  UNLOAD_MIN_MS,
  FLUSH_WAIT_MS,
  SEND_HIGH_WATER,
  writeStderr,
  protocolError,
  ConfigError,
  readConfig,
} = require('./settings');
const { PendingHandles, closeHandle } = require('./handles');
const { parseStreams, splitStreams, endStreams } = require('./streams');
const { Job, JobContext, JOB, preview, truncate, normalizeReceiver, timerAt } = require('./context');
const control = require('./control');
const { Channel } = require('./channel');
const { Starter } = require('./starter');

const debug = util.debuglog('offload');

class Worker {
  /**
   * @param {object} options
   * @param {{resolve(job: string, path?: string): Promise<import('./jobs').JobDefinition>}} options.jobs
   * @param {number} [options.concurrency]
   * @param {number} [options.maxFrame]
   */
  constructor({ jobs, concurrency = 1, maxFrame = DEFAULT_MAX_FRAME, protocol = PROTOCOL }) {
    this.jobs = jobs;
    this.concurrency = concurrency;
    this.maxFrame = maxFrame;
    this.protocol = protocol;
    this.running = new Map(); // id -> Job, runs and calls
    this.runs = 0; // runs in flight: what `concurrency` limits (calls do not count)
    this.shuttingDown = false;
    this.graceTimer = null;
    this.cancelTimer = null;
    this.graceDeadline = Infinity;
    this.exiting = false;
    this.unloading = false;
    this.pendingSends = 0;
    this.answersPending = 0; // answers waiting for stdout/stderr to flush
    this.flushWaiters = [];
    this.sentWaiters = []; // ctx.sent(): resolved once at most SEND_HIGH_WATER bytes wait
    this.handles = new PendingHandles(); // descriptors waiting for their run (§9)
    this.starter = new Starter(this); // starts the jobs' code (lib/starter.js)
    this.endOfRead = false; // the frame being dispatched is the only one of its read
  }

  /** Take over the process: listen on the channel, then announce `ready`. */
  start() {
    if (typeof process.send !== 'function') {
      throw new ConfigError(
        'no IPC channel: this worker is started by an offload supervisor (NODE_CHANNEL_FD is not set)',
      );
    }
    state.worker = this;
    this.channel = new Channel((frames) => this.written(frames));
    debug(
      'channel: %s',
      this.channel.fast ? 'frames of a tick in one write, read sizes counted' : 'process.send per frame, received frames re-serialized to measure them',
    );
    this.holder = new Holder(this);
    process.on('message', (m, handle) => this.receive(m, handle));
    // The supervisor closed the channel or died: stop now, whatever the jobs are doing.
    process.on('disconnect', () => process.exit(0));
    process.on('uncaughtException', (err, origin) => this.onUncaught(err, origin));
    process.on('SIGTERM', () => this.shutdown(DEFAULT_GRACE_MS));
    process.on('SIGINT', () => this.shutdown(DEFAULT_GRACE_MS)); // ee-core's kill() sends SIGINT
    this.send({
      type: 'ready',
      protocol: this.protocol,
      pid: process.pid,
      runtime: `node/${process.versions.node}`,
      capabilities: CAPABILITIES,
      concurrency: this.concurrency,
      minor: PROTOCOL_MINOR,
    });
    return this;
  }

  // --- sending -----------------------------------------------------------------------------

  send(msg, cb) {
    return this.sendLine(msg, JSON.stringify(msg), cb);
  }

  /** Send `msg`, already serialized as `line`. */
  sendLine(msg, line, cb) {
    if (!process.connected) {
      if (cb) process.nextTick(cb, new Error('the channel is closed'));
      return false;
    }
    this.pendingSends++;
    if (this.channel.send(msg, line, cb)) return true;
    this.pendingSends--; // dropped: the channel closed
    return false;
  }

  /** Frames were written (or failed): wake flush() once none is pending. */
  written(frames) {
    this.pendingSends -= frames;
    if (this.pendingSends === 0 && this.flushWaiters.length) {
      for (const w of this.flushWaiters.splice(0)) w();
    }
    if (this.sentWaiters.length && (!process.connected || this.channel.unsent() <= SEND_HIGH_WATER)) {
      for (const w of this.sentWaiters.splice(0)) w();
    }
  }

  /** Resolve once at most SEND_HIGH_WATER bytes wait to be written to the supervisor (at once
   * when that is so already, or when the channel is closed): `ctx.sent()`. */
  sent() {
    if (!process.connected || this.channel.unsent() <= SEND_HIGH_WATER) return Promise.resolve();
    return new Promise((resolve) => this.sentWaiters.push(resolve));
  }

  /** Resolve once every queued frame was handed to the kernel (or after FLUSH_WAIT_MS). */
  flush() {
    if (this.pendingSends === 0 || !process.connected) return Promise.resolve();
    return new Promise((resolve) => {
      this.flushWaiters.push(resolve);
      setTimeout(resolve, FLUSH_WAIT_MS).unref();
    });
  }

  /** Exit with `code` once queued frames are written (ee-core's ps.exit() lands here).
   * ee-core jobs end by calling exit(): a run still in flight is answered first, with `null`
   * for a zero code (the job is done), or an `Exited` error for another code. */
  exit(code = 0) {
    this.exiting = true;
    for (const job of [...this.running.values()]) {
      if (job.kind !== 'run') continue;
      const value = this.holder ? this.holder.valueOf(job) : null;
      if (this.holder) this.holder.release(job);
      if (code === 0) {
        this.finish(job, true, value, true);
      } else {
        const err = new Error(`the job exited the process with status ${code}`);
        err.name = 'Exited';
        this.finish(job, false, err, true);
      }
    }
    if (this.pendingSends === 0) process.exit(code);
    this.flush().then(() => process.exit(code));
  }

  /** The UTF-8 length of `line`, computed only when it could exceed the frame limit. */
  lineBytes(line) {
    // A UTF-16 code unit is at most 3 bytes of UTF-8.
    return line.length * 3 <= this.maxFrame ? line.length : Buffer.byteLength(line);
  }

  sendResult(id, value) {
    const msg = { type: 'result', id, value: value === undefined ? null : value };
    let line;
    try {
      line = JSON.stringify(msg);
    } catch (e) {
      const err = new TypeError(`the job's result is not JSON-serializable: ${e.message}`);
      Object.defineProperty(err, 'internal', { value: true });
      return this.sendError(id, err);
    }
    const size = this.lineBytes(line);
    if (size > this.maxFrame) {
      return this.sendError(
        id,
        FrameTooLargeError.refusal(
          `the result would be a ${size}-byte frame, more than OFFLOAD_MAX_FRAME (${this.maxFrame} bytes)`,
        ),
      );
    }
    return this.sendLine(msg, line);
  }

  sendError(id, err) {
    let error = err && err.wire === true ? err.error : serializeError(err);
    let msg = { type: 'error', id, error };
    let line = JSON.stringify(msg);
    if (this.lineBytes(line) > this.maxFrame) {
      const budget = Math.max(16, Math.floor(this.maxFrame / 16) - 64);
      error = {
        name: truncate(error.name, 200),
        message: truncate(error.message, budget),
        stack: error.stack === null ? null : truncate(error.stack, budget),
        ...(error.retry === false ? { retry: false } : {}),
      };
      msg = { type: 'error', id, error };
      line = JSON.stringify(msg);
    }
    return this.sendLine(msg, line);
  }

  checkedSend(msg, what) {
    let line;
    try {
      line = JSON.stringify(msg);
    } catch (e) {
      throw new TypeError(`${what} is not JSON-serializable: ${e.message}`);
    }
    const size = this.lineBytes(line);
    if (size > this.maxFrame) {
      throw new FrameTooLargeError(
        `${what} would be a ${size}-byte frame, more than OFFLOAD_MAX_FRAME (${this.maxFrame} bytes)`,
      );
    }
    this.sendLine(msg, line);
  }

  sendProgress(job, data) {
    if (job.answered) {
      debug('progress of finished job %s dropped', job.id);
      return;
    }
    this.checkedSend({ type: 'progress', id: job.id, data: data === undefined ? null : data }, 'the progress');
  }

  /** An event; it carries the job's id while the job runs. */
  sendEvent(name, data, receiver, job) {
    if (typeof name !== 'string' || name === '') throw new TypeError('an event name must be a non-empty string');
    const msg = { type: 'event', name, data: data === undefined ? null : data, receiver };
    if (job && !job.answered) msg.id = job.id;
    this.checkedSend(msg, `the event "${name}"`);
  }

  /** The current job (from the async context), or null. */
  currentJob() {
    const ctx = state.als.getStore();
    return ctx instanceof JobContext ? ctx[JOB] : null;
  }

  // --- receiving ---------------------------------------------------------------------------

  receive(m, handle) {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) {
      return protocolError(`a frame must be a JSON object, got ${preview(m)}`);
    }
    // Node's channel reads and parses the whole line before 'message' fires and offers no hook
    // to stop buffering at OFFLOAD_MAX_FRAME, so the limit is checked here, after receipt: free
    // when the read that brought the frame was within the limit (lib/channel.js), else on the
    // compact re-serialization (never longer than the line received, up to escape spelling).
    // (A frame that brings a handle may be emitted after later reads: always measured.)
    this.endOfRead = handle === undefined && this.channel.dispatched();
    if (handle !== undefined || !this.channel.boundedBy(this.maxFrame)) {
      const size = Buffer.byteLength(JSON.stringify(m));
      if (size > this.maxFrame) {
        return protocolError(`a ${size}-byte frame exceeds OFFLOAD_MAX_FRAME (${this.maxFrame} bytes)`);
      }
    }
    const type = m.type;
    if (type !== undefined && type !== null) {
      if (typeof type !== 'string') return protocolError(`"type" must be a string, got ${preview(type)}`);
      switch (type) {
        case 'run':
          return this.onRun(m);
        case 'call':
          return this.onCall(m);
        case 'cancel':
          return this.onCancel(m);
        case 'event':
          return this.onEvent(m);
        case 'ping':
          return this.send(control.pong(this.needId(m)));
        case 'shutdown':
          return this.onShutdown(m);
        case 'kill':
          return this.onKillNotice();
        case 'fd':
          return this.handles.offer(m, handle);
        default:
          debug('ignored a message of unknown type %j', type);
          return undefined;
      }
    }
    if (m.cmd !== undefined && m.cmd !== null) {
      if (typeof m.cmd !== 'string') return protocolError(`"cmd" must be a string, got ${preview(m.cmd)}`);
      if (m.cmd.startsWith('NODE_')) return undefined; // Node's own messages
      if (m.cmd === 'run') return this.onLegacy(m);
      debug('ignored an ee-core message with cmd %j', m.cmd);
      return undefined;
    }
    if (typeof m.channel === 'string') {
      debug('ignored a message on channel %j', m.channel);
      return undefined;
    }
    return protocolError(`a frame has neither "type", "cmd" nor "channel": ${preview(m)}`);
  }

  needId(m, field = 'id') {
    const id = m[field];
    // A UTF-16 code unit is at most 3 bytes: short ids need no byte count.
    if (typeof id !== 'string' || id === '' || (id.length > 85 && Buffer.byteLength(id) > 256)) {
      protocolError(`${m.type || m.cmd}: "${field}" must be a string of 1 to 256 bytes, got ${preview(id)}`);
    }
    return id;
  }

  jobFields(m, id) {
    const kind = m.type || m.cmd;
    const { job, path: file, args, deadline, fds } = m;
    if (fds !== undefined && fds !== null && !(Number.isInteger(fds) && fds >= 0)) {
      protocolError(`${kind}: "fds" must be an integer >= 0`);
    }
    if (file !== undefined && file !== null && typeof file !== 'string') {
      protocolError(`${kind}: "path" must be a string`);
    }
    if (typeof job !== 'string' && typeof file !== 'string') protocolError(`${kind}: "job" must be a string`);
    if (args !== undefined && args !== null && !Array.isArray(args)) protocolError(`${kind}: "args" must be an array`);
    if (deadline !== undefined && deadline !== null && !Number.isFinite(deadline)) {
      protocolError(`${kind}: "deadline" must be a number`);
    }
    return {
      id,
      job: typeof job === 'string' ? job : '',
      path: typeof file === 'string' ? file : null,
      params: m.params === undefined ? null : m.params,
      args: Array.isArray(args) ? args : null,
      deadline: typeof deadline === 'number' ? deadline : null,
      fds: typeof fds === 'number' ? fds : 0,
      streams: parseStreams(m.streams, kind, protocolError),
    };
  }

  onRun(m) {
    const fields = this.jobFields(m, this.needId(m));
    if (fields.fds > 0) {
      try {
        fields.handles = this.handles.take(fields.id, fields.fds);
        if (fields.streams) {
          const { streams, rest } = splitStreams(fields.streams, fields.handles);
          fields.handles = rest;
          fields.streamHandles = streams;
        }
      } catch (err) {
        return this.sendError(fields.id, err);
      }
    }
    return this.startJob('run', fields);
  }

  onCall(m) {
    const fields = this.jobFields(m, this.needId(m));
    if (typeof m.func !== 'string' || m.func === '') protocolError('call: "func" must be a non-empty string');
    fields.func = m.func;
    fields.args = fields.args || [];
    this.startJob('call', fields);
  }

  /** ee-core's `{mid, cmd: "run", jobPath, jobParams, jobFunc, jobFuncParams}` (§5). */
  onLegacy(m) {
    let id = m.mid;
    if (typeof id === 'number' && Number.isFinite(id)) id = String(id);
    id = this.needId({ cmd: 'run', mid: id }, 'mid');
    const jobPath = m.jobPath;
    if (jobPath !== undefined && jobPath !== null && typeof jobPath !== 'string') {
      protocolError('run: "jobPath" must be a string');
    }
    const arrayOf = (key) => {
      const v = m[key];
      if (v === undefined || v === null) return [];
      if (!Array.isArray(v)) protocolError(`run: "${key}" must be an array`);
      return v;
    };
    const file = typeof jobPath === 'string' ? jobPath : '';
    const fields = {
      id,
      job: legacyJobName(file),
      path: file === '' ? null : file,
      params: null,
      args: null,
      deadline: null,
    };
    if (typeof m.jobFunc === 'string' && m.jobFunc !== '') {
      fields.func = m.jobFunc;
      fields.args = arrayOf('jobFuncParams');
      return this.startJob('call', fields);
    }
    fields.args = arrayOf('jobParams');
    fields.params = fields.args.length > 0 ? fields.args[0] : null;
    return this.startJob('run', fields);
  }

  onCancel(m) {
    const id = this.needId(m);
    this.handles.forget(id);
    const job = this.running.get(id);
    if (!job) {
      debug('cancel of unknown job %s ignored', id);
      return;
    }
    job.abort(CancelledError.refusal(`job ${id} was cancelled`));
  }

  onEvent(m) {
    if (typeof m.name !== 'string') protocolError('event: "name" must be a string');
    const id = m.id;
    if (id !== undefined && id !== null && (typeof id !== 'string' || id === '')) {
      protocolError('event: "id" must be a non-empty string');
    }
    const data = m.data === undefined ? null : m.data;
    const meta = { name: m.name, id: typeof id === 'string' ? id : null };
    const results = state.events.rawListeners(m.name).map((listener) => {
      try {
        return Promise.resolve(listener.call(state.events, data, meta));
      } catch (e) {
        return Promise.reject(e);
      }
    });
    Promise.allSettled(results).then((settled) => {
      for (const s of settled) {
        if (s.status === 'rejected') {
          writeStderr(`offload worker: a listener of event "${m.name}" failed: ${util.inspect(s.reason)}\n`);
        }
      }
      if (typeof id === 'string') this.send({ type: 'ack', id });
    });
  }

  onShutdown(m) {
    const g = m.grace_ms;
    if (g !== undefined && g !== null && (typeof g !== 'number' || !(g >= 0))) {
      protocolError('shutdown: "grace_ms" must be a number >= 0');
    }
    this.shutdown(typeof g === 'number' ? g : DEFAULT_GRACE_MS);
  }

  // --- jobs --------------------------------------------------------------------------------

  startJob(kind, fields) {
    const { id } = fields;
    // A run refused before it starts closes the descriptors it carried.
    if (fields.handles && (this.running.has(id) || this.shuttingDown || (kind === 'run' && this.runs >= this.concurrency))) {
      fields.handles.forEach(closeHandle);
      if (fields.streamHandles) endStreams(fields.streamHandles);
    }
    if (this.running.has(id)) return protocolError(`${kind}: job id ${JSON.stringify(id)} is already in flight`);
    if (this.shuttingDown) return this.sendError(id, ShuttingDownError.refusal('the worker is shutting down'));
    // A call is a control operation on a running job (pause, resume, status): it does not count.
    if (kind === 'run' && this.runs >= this.concurrency) {
      return this.sendError(
        id,
        BusyError.refusal(`the worker already runs ${this.runs} job(s), its concurrency is ${this.concurrency}`),
      );
    }
    const job = new Job(kind, fields);
    if (fields.handles) job.handles = fields.handles;
    if (fields.streamHandles) job.streams = fields.streamHandles;
    this.running.set(id, job);
    if (kind === 'run') this.runs += 1;
    if (job.deadline !== null) {
      const onDeadline = () =>
        job.abort(DeadlineExceededError.refusal(`job ${id} passed its deadline (${new Date(job.deadline).toISOString()})`));
      if (job.deadline <= Date.now()) {
        onDeadline();
        return this.finish(job, false, job.signal.reason);
      }
      job.deadlineTimer = timerAt(job.deadline, onDeadline);
    }
    const ctx = new JobContext(this, job);
    job.ctx = ctx;
    this.starter.begin(job);
    return undefined;
  }

  finish(job, ok, value, immediate = false) {
    if (job.answered) return;
    // ee-core ChildJob lifecycle (lib/lifecycle.js): a successful run may be held until exit().
    if (ok && this.holder && this.holder.hold(job, value)) return;
    if (this.holder) this.holder.release(job);
    this.forget(job);
    // What the job printed is in the pipes before its answer: the supervisor drains them when
    // the answer comes (docs/design/job-logs.md). Pipes are written synchronously on Linux, so
    // this waits only when a stream still buffers (exit() answers at once: it ends the process).
    const flushed = immediate ? null : outputFlushed();
    if (flushed) {
      this.answersPending++;
      flushed.then(() => {
        this.answersPending--;
        this.answer(job, ok, value);
        if (this.running.size === 0 && this.shuttingDown) this.finishShutdown();
      });
      return;
    }
    this.answer(job, ok, value);
    if (this.running.size === 0 && this.shuttingDown) this.finishShutdown();
  }

  answer(job, ok, value) {
    if (ok) {
      this.sendResult(job.id, value);
    } else {
      this.sendError(job.id, job.aborted ? abortAnswer(job.signal.reason, value) : value);
    }
  }

  /** The job is answered: it no longer runs for the protocol. */
  forget(job) {
    job.answered = true;
    // Handles the job never looked at are closed with it; taken ones are the job's.
    if (job.handles && !job.handlesTaken) job.handles.forEach(closeHandle);
    endStreams(job.streams);
    job.dispose();
    if (job.releaseInstance) job.releaseInstance();
    if (this.running.delete(job.id) && job.kind === 'run') this.runs -= 1;
  }

  // --- shutdown ----------------------------------------------------------------------------

  /** Stop accepting jobs, let running ones finish for `graceMs`, cancel the rest, answer them,
   * call the job modules' unload(), send {"type":"ack","id":"shutdown"} and exit 0. A later shutdown may only shorten the grace. */
  shutdown(graceMs) {
    const deadline = Date.now() + graceMs;
    if (this.shuttingDown) {
      if (deadline < this.graceDeadline && this.graceTimer) {
        clearTimeout(this.graceTimer.t);
        this.graceDeadline = deadline;
        this.graceTimer = timerAt(deadline, () => this.afterGrace());
      }
      return;
    }
    this.shuttingDown = true;
    this.graceDeadline = deadline;
    // The worker's shutdown hooks (onShutdown / softKill) run while its jobs finish.
    this.hooksDone = control.runShutdownHooks(Math.max(graceMs, UNLOAD_MIN_MS));
    if (this.running.size === 0) return this.finishShutdown();
    this.graceTimer = timerAt(deadline, () => this.afterGrace());
    return undefined;
  }

  afterGrace() {
    this.graceTimer = null;
    if (this.exiting) return;
    for (const job of this.running.values()) {
      job.abort(CancelledError.refusal(`job ${job.id} was cancelled: the worker is shutting down`));
    }
    this.cancelTimer = setTimeout(() => {
      // Jobs that ignore their signal are answered for, then the process exits under them.
      for (const job of [...this.running.values()]) this.finish(job, false, job.signal.reason);
    }, CANCEL_WAIT_MS);
  }

  finishShutdown() {
    if (this.exiting || this.answersPending > 0) return; // the last answer finishes it
    this.exiting = true;
    if (this.graceTimer) clearTimeout(this.graceTimer.t);
    if (this.cancelTimer) clearTimeout(this.cancelTimer);
    Promise.all([this.unloadJobs(), this.hooksDone]).then(() => {
      if (!this.send({ type: 'ack', id: 'shutdown' }, () => process.exit(0)) && !process.connected) process.exit(0);
      setTimeout(() => process.exit(0), FLUSH_WAIT_MS).unref();
    });
  }

  /** Once every job is answered, before the ack: call the optional unload() of each job module
   * loaded, for what remains of the grace (at least UNLOAD_MIN_MS). An unload() that has not
   * settled by then is abandoned; errors go to stderr. Runs outside any job's async context. */
  unloadJobs() {
    if (!this.jobs || typeof this.jobs.unloadAll !== 'function') return Promise.resolve();
    this.unloading = true;
    const budget = Math.max(this.graceDeadline - Date.now(), UNLOAD_MIN_MS);
    return new Promise((resolve) => {
      const timer = timerAt(Date.now() + budget, resolve);
      const onError = (file, err) =>
        writeStderr(`offload worker: unload() of ${file} failed: ${err && err.stack ? err.stack : util.inspect(err)}\n`);
      state.als.exit(() => this.jobs.unloadAll(onError)).then(() => {
        clearTimeout(timer.t);
        resolve();
      });
    });
  }

  /** The hard-kill notice: every job is aborted, the hard-kill hooks run, and the process exits
   * once their frames are written (the supervisor's SIGKILL follows the grace anyway). */
  onKillNotice() {
    if (this.exiting) return;
    this.exiting = true;
    this.shuttingDown = true;
    for (const job of this.running.values()) {
      job.abort(CancelledError.refusal(`job ${job.id} was cancelled: the worker is being killed`));
    }
    control.runKillHooks();
    this.flush().then(() => process.exit(0));
  }

  // --- crashes -----------------------------------------------------------------------------

  onUncaught(err, origin) {
    if (isChannelParseError(err)) {
      return protocolError(`the supervisor sent a blank line or a line that is not JSON (${err.message})`);
    }
    const job = this.currentJob();
    const where = job ? ` in job ${job.name || job.kind} (${job.id})` : '';
    const what = origin === 'unhandledRejection' ? 'unhandled rejection' : 'uncaught exception';
    writeStderr(`offload worker: ${what}${where}: ${err && err.stack ? err.stack : util.inspect(err)}\n`);
    // Every job is answered and the worker is on its way out (an unload() or a job that ignored
    // its cancellation threw): logged only, the shutdown still acks and exits 0.
    if (this.unloading) return undefined;
    if (this.crashed) return undefined;
    this.crashed = true;
    // Like Node's default, the process ends (its state is unknown); the job the error came from
    // is answered with it first, so the supervisor gets the real cause.
    if (job && !job.answered) {
      this.forget(job);
      this.sendError(job.id, err);
    }
    this.flush().then(() => process.exit(1));
    return undefined;
  }
}

/** Node's channel throws a SyntaxError from its line parser on invalid JSON or a blank line. */
function isChannelParseError(err) {
  return (
    err instanceof SyntaxError &&
    typeof err.stack === 'string' &&
    /parseChannelMessages|node:internal\/child_process/.test(err.stack)
  );
}

/** The answer of a job that failed after its signal was aborted: the abort's name (Cancelled,
 * DeadlineExceeded); the job's own error, if it threw something else, is kept in the message. */
/** A promise settled once what stdout and stderr still buffer is written, or null when they
 * buffer nothing (the usual case: on Linux a pipe is written synchronously). */
function outputFlushed() {
  const out = buffering(process.stdout);
  const err = buffering(process.stderr);
  if (!out && !err) return null;
  const busy = [out, err].filter(Boolean);
  return Promise.all(busy.map((s) => new Promise((resolve) => s.write('', () => resolve()))));
}

/** `s` when it still buffers output, else null. */
function buffering(s) {
  return s && !s.destroyed && s.writableLength > 0 ? s : null;
}

function abortAnswer(reason, thrown) {
  const base = serializeError(reason);
  if (thrown === reason) return { wire: true, error: base };
  const own = serializeError(thrown);
  const sameKind = isAbort(thrown) || (thrown && thrown.cause === reason);
  return {
    wire: true,
    error: {
      name: base.name,
      message: sameKind ? base.message : `${base.message}; then the job threw ${own.name}: ${own.message}`,
      stack: own.stack || base.stack,
    },
  };
}

/** ee-core's jobPath -> job name: the file stem of an absolute path, else the path without a
 * "./" prefix or a .js/.mjs/.cjs extension (the same mapping as the Rust protocol crate). */
function legacyJobName(jobPath) {
  let name = jobPath.startsWith('./') ? jobPath.slice(2) : jobPath;
  if (path.isAbsolute(name)) name = path.basename(name);
  return name.replace(/\.(c|m)?js$/, '');
}

module.exports = {
  Worker,
  JobContext,
  ConfigError,
  readConfig,
  protocolError,
  writeStderr,
  normalizeReceiver,
  PROTOCOL,
  CAPABILITIES,
  DEFAULT_GRACE_MS,
  CANCEL_WAIT_MS,
};
