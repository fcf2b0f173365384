'use strict';
// The pool's load-process-manager controls (issue 17): liveness and health-recycle options,
// soft/hard kill options, and the descriptors a run passes to its worker. Checks only: every
// refusal names the option and its limit; ChildPool (lib/pool.js) sends the result to the addon.
const { makeError } = require('./errors');
const { positive, duration, checkOptions } = require('./options');

const RECYCLE_OPTIONS = ['jobs', 'rss', 'age', 'heap', 'cpu', 'cpuSamples'];
/** The shortest ping interval and timeout (`MIN_PING` in crates/pool/src/config.rs). */
const MIN_PING_MS = 10;
/** CPU is a percent of one core: at most 100 per core (crates/pool `RecyclePolicy::max_cpu`). */
const MAX_CPU = 10000;
const MAX_CPU_SAMPLES = 1000;

function atLeastPing(name, v) {
  const ms = duration(name, v);
  if (ms !== undefined && ms < MIN_PING_MS) {
    throw makeError('InvalidArgument', `option "${name}" must be at least ${MIN_PING_MS} ms, got ${v}`);
  }
  return ms;
}

/** The addon's config fields for `recycle` and the ping options of `ChildPool` options. */
function healthConfig(opts) {
  const recycle = opts.recycle === undefined || opts.recycle === null ? {} : opts.recycle;
  checkOptions('ChildPool recycle', recycle, RECYCLE_OPTIONS);
  const cpu = positive('recycle.cpu', recycle.cpu);
  if (cpu !== undefined && cpu > MAX_CPU) {
    throw makeError('InvalidArgument', `option "recycle.cpu" is a percent of one core, at most ${MAX_CPU}, got ${cpu}`);
  }
  const cpuSamples = positive('recycle.cpuSamples', recycle.cpuSamples);
  if (cpuSamples !== undefined && cpuSamples > MAX_CPU_SAMPLES) {
    throw makeError('InvalidArgument', `option "recycle.cpuSamples" must be at most ${MAX_CPU_SAMPLES}, got ${cpuSamples}`);
  }
  // `pingInterval: false` (or 0) never pings.
  const never = opts.pingInterval === false || opts.pingInterval === 0;
  return {
    recycleAfterJobs: positive('recycle.jobs', recycle.jobs),
    recycleMaxRss: positive('recycle.rss', recycle.rss),
    recycleMaxAgeMs: duration('recycle.age', recycle.age),
    recycleMaxHeap: positive('recycle.heap', recycle.heap),
    recycleMaxCpu: cpu,
    recycleCpuSamples: cpuSamples,
    pingIntervalMs: never ? 0 : atLeastPing('pingInterval', opts.pingInterval),
    pingTimeoutMs: atLeastPing('pingTimeout', opts.pingTimeout),
  };
}

/** `killWorker` / `killAll` options: `{mode, grace}` (and `order` for `killAll`). */
function killOptions(where, opts, withOrder) {
  checkOptions(where, opts, withOrder ? ['mode', 'grace', 'order'] : ['mode', 'grace', 'signal']);
  const mode = opts.mode === undefined ? 'hard' : opts.mode;
  if (mode !== 'soft' && mode !== 'hard') {
    throw makeError('InvalidArgument', `${where}: option "mode" must be "soft" or "hard", got ${JSON.stringify(opts.mode)}`);
  }
  const order = opts.order === undefined ? 'parallel' : opts.order;
  if (withOrder && order !== 'parallel' && order !== 'sequence') {
    throw makeError('InvalidArgument', `${where}: option "order" must be "parallel" or "sequence", got ${JSON.stringify(opts.order)}`);
  }
  return { mode, grace: duration('grace', opts.grace === undefined ? 5000 : opts.grace), order };
}

/** The descriptor numbers of `fds`: a net.Socket, net.Server, dgram.Socket (their libuv
 * handle's descriptor) or a descriptor number. */
function fdNumbers(fds, job) {
  const at = `job ${JSON.stringify(job)}`;
  if (!Array.isArray(fds)) throw makeError('InvalidArgument', `${at}: "fds" must be an array`, { job });
  return fds.map((h, i) => {
    const fd = typeof h === 'number' ? h : h && h._handle && h._handle.fd;
    if (!Number.isSafeInteger(fd) || fd < 0) {
      const what = typeof h === 'number' ? String(h) : 'a handle without an open descriptor (closed, not yet listening or connected, or not a socket)';
      throw makeError('InvalidArgument', `${at}: fds[${i}] is ${what}`, { job });
    }
    return fd;
  });
}

module.exports = { healthConfig, killOptions, fdNumbers };
