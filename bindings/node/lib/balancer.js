'use strict';
// LoadBalancer: offload-balance's 13 algorithms (the seed's 8, fixed, plus p2c, consistentHash,
// first, leastMemory, leastLoad), with ee-core's method names.

const native = require('./native');
const { fromNative, makeError } = require('./errors');

const ALGORITHMS = native.NativeBalancer.algorithms();
const AlgorithmType = Object.freeze(Object.fromEntries(ALGORITHMS.map((a) => [a, a])));

function call(fn) {
  try {
    return fn();
  } catch (e) {
    throw fromNative(e);
  }
}

function spec(t) {
  if (t === null || typeof t !== 'object' || (typeof t.id !== 'number' && typeof t.id !== 'string')) {
    throw makeError('InvalidArgument', `a target is {id: number | string, weight?: number}, got ${JSON.stringify(t)}`);
  }
  if (typeof t.id === 'number' && !Number.isSafeInteger(t.id)) {
    throw makeError('InvalidArgument', `a numeric target id must be a safe integer, got ${t.id}`);
  }
  return { id: t.id, weight: t.weight === undefined ? undefined : t.weight, capacity: t.capacity };
}

class LoadBalancer {
  /** @param {{targets?: {id: number|string, weight?: number}[], algorithm?: string}} [options] */
  constructor({ targets = [], algorithm = 'polling' } = {}) {
    this.byId = new Map();
    for (const t of targets) this.byId.set(t.id, t);
    this.lb = call(() => new native.NativeBalancer(JSON.stringify(targets.map(spec)), algorithm));
  }

  get algorithm() {
    return this.lb.algorithm();
  }

  /** The targets, in order. */
  get targets() {
    return JSON.parse(this.lb.targets()).map((t) => this.byId.get(t.id) || { id: t.id, weight: t.weight });
  }

  _target(id) {
    return id === undefined || id === null ? null : this.byId.get(id) || { id };
  }

  /** One target (`key`: the id for `specify`, the affinity key for `consistentHash`), or null. */
  pickOne(key) {
    const ids = JSON.parse(this.lb.pick(1, key === undefined || key === null ? null : JSON.stringify(key)));
    return ids.length ? this._target(ids[0]) : null;
  }

  /** Up to `count` distinct targets. */
  pickMulti(count = 1, key) {
    const ids = JSON.parse(this.lb.pick(count, key === undefined || key === null ? null : JSON.stringify(key)));
    return ids.map((id) => this._target(id));
  }

  /** One target held as in flight (for minimumConnection & co.) until `release()`; or null. */
  acquire(key) {
    const r = JSON.parse(this.lb.acquire(key === undefined || key === null ? null : JSON.stringify(key)));
    if (!r) return null;
    let done = false;
    return {
      target: this._target(r.id),
      release: () => {
        if (!done) {
          done = true;
          this.lb.release(r.handle);
        }
      },
    };
  }

  add(target) {
    call(() => this.lb.add(JSON.stringify(spec(target))));
    this.byId.set(target.id, target);
  }

  del(target) {
    const id = target !== null && typeof target === 'object' ? target.id : target;
    this.byId.delete(id);
    return call(() => this.lb.del(JSON.stringify(id)));
  }

  wipe() {
    this.byId.clear();
    this.lb.wipe();
  }

  setTargets(targets) {
    call(() => this.lb.setTargets(JSON.stringify(targets.map(spec))));
    this.byId = new Map(targets.map((t) => [t.id, t]));
  }

  setAlgorithm(algorithm) {
    call(() => this.lb.setAlgorithm(String(algorithm)));
  }

  /** Update a target's weight and/or load sample ({cpu: percent, memory: bytes}). */
  updateParams(id, { weight, cpu, memory } = {}) {
    call(() => this.lb.update(JSON.stringify(id), weight, cpu, memory));
  }

  /** In-flight picks per target id. */
  inFlight() {
    return Object.fromEntries(JSON.parse(this.lb.targets()).map((t) => [t.id, t.inFlight]));
  }
}

LoadBalancer.Algorithm = AlgorithmType;

module.exports = { LoadBalancer, AlgorithmType, ALGORITHMS };
