'use strict';
// The seed's module contract (BackgroundService, docs/line-protocol.md): a job file that
// exports `TExecute(parts, client)` and/or `UExecute(parts)` — and none of the SDK's own shapes
// (class, function, object with handle()) — runs unchanged.
//
// Its params are what `offload serve --tcp/--udp` submits for `module:data`:
//   {"module": "less", "data": "…", "parts": ["less", "…"], "transport": "tcp" | "udp", "peer": "ip:port"}
//
// - transport "tcp" (a direct call or queue:add): TExecute(parts, client) runs; what it writes
//   with client.write() / client.end() is the job's result (one UTF-8 string), which the daemon
//   writes back to the TCP client. The reply is complete at client.end() (or destroy()), when
//   the promise TExecute returns settles, or else QUIET_MS after the last write (modules of the
//   seed's era write from callbacks and never end the socket). A module with only UExecute
//   answers UExecute's return value.
// - transport "udp": UExecute(parts) runs; its return value (awaited) is stored as the result,
//   which nobody reads. A module with only TExecute runs it; its reply is stored the same way.
//
// Submitted another way (HTTP), parts are [params.module or the job's last name segment,
// params.data, else the params themselves when they are a string].

const { EventEmitter } = require('node:events');

/** Quiet time after the last write that completes a reply not ended with client.end(). */
const QUIET_MS = 20;

/** Whether a module is one of the seed's: TExecute or UExecute exported. */
function isSeedModule(mod) {
  return (
    mod !== null &&
    (typeof mod === 'object' || typeof mod === 'function') &&
    (typeof mod.TExecute === 'function' || typeof mod.UExecute === 'function')
  );
}

/** The seed's `parts`: [module name, data]. */
function partsOf(params, job) {
  if (params !== null && typeof params === 'object' && Array.isArray(params.parts) && params.parts.length > 0) {
    return [String(params.parts[0]), params.parts.length > 1 ? params.parts[1] : ''];
  }
  const name =
    params !== null && typeof params === 'object' && typeof params.module === 'string'
      ? params.module
      : String(job || '').split('/').pop();
  let data = '';
  if (typeof params === 'string') data = params;
  else if (params !== null && typeof params === 'object' && 'data' in params) data = params.data;
  return [name, data];
}

function splitPeer(peer) {
  if (typeof peer !== 'string') return [undefined, undefined];
  const i = peer.lastIndexOf(':');
  if (i === -1) return [peer, undefined];
  const host = peer.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(peer.slice(i + 1));
  return [host, Number.isInteger(port) ? port : undefined];
}

/**
 * What TExecute receives as `client`: enough of a net.Socket for a module that writes its reply
 * (write, end, destroy, remoteAddress...). Writes are collected; they become the job's result.
 */
class ReplyClient extends EventEmitter {
  constructor(peer) {
    super();
    const [host, port] = splitPeer(peer);
    this.remoteAddress = host;
    this.remotePort = port;
    this.remoteFamily = host && host.includes(':') ? 'IPv6' : 'IPv4';
    this.chunks = [];
    this.bytesWritten = 0;
    this.writable = true;
    this.ended = false;
    this.destroyed = false;
    this.onChange = () => {};
  }

  write(chunk, encoding, cb) {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (this.ended) {
      const err = new Error('write after end');
      err.code = 'ERR_STREAM_WRITE_AFTER_END';
      if (cb) process.nextTick(cb, err);
      return false;
    }
    if (chunk !== undefined && chunk !== null) {
      let buf;
      if (Buffer.isBuffer(chunk)) buf = chunk;
      else if (chunk instanceof Uint8Array) buf = Buffer.from(chunk);
      else buf = Buffer.from(String(chunk), typeof encoding === 'string' ? encoding : 'utf8');
      this.chunks.push(buf);
      this.bytesWritten += buf.length;
    }
    if (cb) process.nextTick(cb);
    this.onChange();
    return true;
  }

  end(chunk, encoding, cb) {
    if (typeof chunk === 'function') {
      cb = chunk;
      chunk = undefined;
    } else if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (!this.ended && chunk !== undefined && chunk !== null) this.write(chunk, encoding);
    this.ended = true;
    this.writable = false;
    if (cb) process.nextTick(cb);
    this.onChange();
    return this;
  }

  destroy() {
    this.destroyed = true;
    return this.end();
  }

  destroySoon() {
    return this.end();
  }

  /** The reply so far, as text. */
  get text() {
    return Buffer.concat(this.chunks).toString('utf8');
  }

  address() {
    return {};
  }
}
for (const m of ['setEncoding', 'setTimeout', 'setNoDelay', 'setKeepAlive', 'pause', 'resume', 'ref', 'unref', 'cork', 'uncork']) {
  ReplyClient.prototype[m] = function () {
    return this;
  };
}

/** Runs TExecute; resolves with the reply text. */
function runTExecute(mod, parts, ctx, peer) {
  return new Promise((resolve, reject) => {
    const client = new ReplyClient(peer);
    const signal = ctx && ctx.signal;
    let done = false;
    let returned = true; // no promise returned (yet): callback style
    let timer = null;
    const onAbort = () => settle(false, signal.reason);
    const settle = (ok, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      client.onChange = () => {};
      if (signal) signal.removeEventListener('abort', onAbort);
      if (ok) resolve(client.text);
      else reject(value);
    };
    const changed = () => {
      if (done) return;
      if (client.ended) return settle(true);
      if (!returned || client.chunks.length === 0) return;
      clearTimeout(timer);
      timer = setTimeout(() => settle(true), QUIET_MS);
    };
    if (signal) {
      if (signal.aborted) return settle(false, signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    }
    client.onChange = changed;
    let out;
    try {
      out = mod.TExecute(parts, client);
    } catch (e) {
      return settle(false, e);
    }
    if (out !== null && typeof out === 'object' && typeof out.then === 'function') {
      returned = false;
      Promise.resolve(out).then(
        () => settle(true),
        (e) => settle(false, e),
      );
    }
    changed();
    return undefined;
  });
}

/** The largest UDP answer: one datagram. */
const MAX_UDP_ANSWER = 65507;

/** UExecute's third argument: answer(data) sends `data` (a string or bytes) back to the
 * datagram's source, from the daemon's UDP port (docs/line-protocol.md). */
function udpAnswer(ctx) {
  return function answer(data) {
    const bytes = Buffer.isBuffer(data) || data instanceof Uint8Array ? Buffer.from(data) : null;
    const size = bytes ? bytes.length : Buffer.byteLength(String(data));
    if (size > MAX_UDP_ANSWER) {
      throw new RangeError(`a UDP answer is at most ${MAX_UDP_ANSWER} bytes, got ${size}`);
    }
    const msg = bytes
      ? { data: bytes.toString('latin1'), encoding: 'latin1' }
      : { data: String(data), encoding: 'utf8' };
    ctx.emit('$offload/udp-answer', msg);
  };
}

/** The result of a job that answered on the real client socket (docs/line-protocol.md): the
 * daemon then writes nothing more. */
function clientReplied(bytes) {
  return { $offload: 'client-replied', bytes };
}

/**
 * Runs TExecute with the real client socket (a net.Socket the daemon passed with the run,
 * docs/protocol.md §9): the module reads more, writes binary, streams, ends. The reply is
 * complete when the socket is ended or closed, when the promise TExecute returns settles, or
 * otherwise QUIET_MS after the last write (the seed's modules never end the socket); then this
 * ends it (its data flushed) and closes it. Resolves with clientReplied(bytes written).
 */
function runTExecuteOnSocket(mod, parts, ctx, sock) {
  return new Promise((resolve, reject) => {
    const signal = ctx && ctx.signal;
    let done = false;
    let returned = true;
    let timer = null;
    const write = sock.write;
    const onAbort = () => settle(false, signal.reason);
    const onClose = () => settle(true);
    const settle = (ok, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.write = write;
      sock.removeListener('close', onClose);
      sock.removeListener('finish', onClose);
      if (signal) signal.removeEventListener('abort', onAbort);
      if (!ok) {
        // The daemon answers 500 on its own copy; this one is closed without a FIN.
        sock.destroy();
        return reject(value);
      }
      if (sock.destroyed || sock.writableFinished) {
        sock.destroy();
        return resolve(clientReplied(sock.bytesWritten));
      }
      return sock.end(() => {
        const bytes = sock.bytesWritten;
        sock.destroy();
        resolve(clientReplied(bytes));
      });
    };
    const changed = () => {
      if (done || !returned) return;
      clearTimeout(timer);
      timer = setTimeout(() => settle(true), QUIET_MS);
    };
    // Writes are the module's; this only notices them (for the quiet rule).
    sock.write = function (...args) {
      const r = write.apply(this, args);
      changed();
      return r;
    };
    sock.once('finish', onClose);
    sock.once('close', onClose);
    if (signal) {
      if (signal.aborted) return settle(false, signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    }
    let out;
    try {
      out = mod.TExecute(parts, sock);
    } catch (e) {
      return settle(false, e);
    }
    if (out !== null && typeof out === 'object' && typeof out.then === 'function') {
      returned = false;
      Promise.resolve(out).then(
        () => settle(true),
        (e) => settle(false, e),
      );
    }
    return undefined;
  });
}

/** A result that survives JSON: undefined and functions are null, Buffers are text. */
function jsonable(v) {
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  try {
    return JSON.stringify(v) === undefined ? null : v;
  } catch {
    return null;
  }
}

/** The job handler `(params, ctx)` of a seed module. */
function seedHandler(mod) {
  return async function backgroundService(params, ctx) {
    const parts = partsOf(params, ctx && ctx.job);
    const udp = params !== null && typeof params === 'object' && params.transport === 'udp';
    const hasT = typeof mod.TExecute === 'function';
    const hasU = typeof mod.UExecute === 'function';
    if ((udp && hasU) || !hasT) {
      if (!udp) return jsonable(await mod.UExecute(parts));
      const [address, port] = splitPeer(params.peer);
      const rinfo = {
        address,
        port,
        family: address && address.includes(':') ? 'IPv6' : 'IPv4',
        size: Buffer.byteLength(String(parts[1])),
      };
      return jsonable(await mod.UExecute(parts, rinfo, udpAnswer(ctx)));
    }
    const peer = params !== null && typeof params === 'object' ? params.peer : undefined;
    // The daemon offered the real connection (params.client): TExecute gets it.
    const offered = params !== null && typeof params === 'object' && typeof params.client === 'string';
    const sock = offered && ctx && ctx.fds.length > 0 ? ctx.fds[0] : null;
    if (sock && typeof sock.write === 'function') return runTExecuteOnSocket(mod, parts, ctx, sock);
    return runTExecute(mod, parts, ctx, peer);
  };
}

module.exports = { isSeedModule, seedHandler, partsOf, ReplyClient, QUIET_MS, clientReplied };
