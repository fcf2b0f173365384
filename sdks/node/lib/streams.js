'use strict';
// A run's byte streams (docs/protocol.md §10): the run's `streams` names which of its passed
// descriptors (net.Socket here, over an AF_UNIX socket pair the supervisor made) are its input
// and output. The job reads `ctx.inputStream` (a Readable) and writes `ctx.outputStream` (a
// Writable): the kernel's socket buffer is the backpressure (write() returns false, 'drain'
// comes when the reader took some). A write that waits for the stall limit destroys the output
// with a `StreamStalled` error naming the limit; one whose reader is gone fails with
// `StreamClosed`. Both end when the job is answered.

const { closeHandle } = require('./handles');

/** Checks a run's `streams` field: null, or {input, output, stallMs}. */
function parseStreams(s, kind, protocolError) {
  if (s === undefined || s === null) return null;
  const index = (v, field) => {
    if (v === undefined || v === null) return null;
    if (!Number.isInteger(v) || v < 0) protocolError(`${kind}: "streams.${field}" must be an integer >= 0`);
    return v;
  };
  if (typeof s !== 'object') protocolError(`${kind}: "streams" must be an object`);
  const stallMs = s.stall_ms;
  if (!Number.isFinite(stallMs) || stallMs < 0) protocolError(`${kind}: "streams.stall_ms" must be a number >= 0`);
  return { input: index(s.input, 'input'), output: index(s.output, 'output'), stallMs };
}

function streamError(name, message) {
  const err = new Error(message);
  Object.defineProperty(err, 'name', { value: name, configurable: true, writable: true });
  return err;
}

/** Takes the stream handles out of `handles` (the rest stay, in order): {input, output, stallMs}.
 * Throws FdMissing for an index out of range. */
function splitStreams(spec, handles) {
  const n = handles.length;
  for (const i of [spec.input, spec.output]) {
    if (i !== null && i >= n) {
      throw streamError('FdMissing', `the run's stream index ${i} is out of its ${n} descriptors`);
    }
  }
  const picked = { input: spec.input === null ? null : handles[spec.input], output: null, stallMs: spec.stallMs };
  picked.output = spec.output === null ? null : handles[spec.output];
  const rest = handles.filter((_, i) => i !== spec.input && i !== spec.output);
  return { streams: picked, rest };
}

/** Makes `sock` the job's output: stall limit and typed errors. */
function asOutput(sock, stallMs) {
  // Typed before anyone else sees them (events.once, pipeline, the write callbacks).
  sock.prependListener('error', (err) => {
    if (err && (err.code === 'EPIPE' || err.code === 'ECONNRESET') && err.name !== 'StreamClosed') {
      Object.defineProperty(err, 'name', { value: 'StreamClosed', configurable: true, writable: true });
      err.message = `the stream's other end was closed early (${err.message})`;
    }
  });
  // A watchdog: while data waits, what the kernel took (`bytesWritten` counts queued bytes,
  // `writableLength` those not yet taken) must grow within the limit.
  let taken = -1;
  let since = Date.now();
  const check = () => {
    const now = Date.now();
    const got = sock.bytesWritten - sock.writableLength;
    if (sock.writableLength === 0 || got !== taken) {
      taken = got;
      since = now;
    } else if (now - since >= stallMs) {
      clearInterval(timer);
      sock.destroy(
        streamError(
          'StreamStalled',
          `the stream's reader took nothing for ${stallMs} ms (the stall limit): it stopped reading`,
        ),
      );
    }
  };
  const timer = setInterval(check, Math.min(Math.max(Math.floor(stallMs / 4), 10), 1000));
  timer.unref();
  sock.once('close', () => clearInterval(timer));
  return sock;
}

/** The job is answered: its streams end (an output that was not ended is ended; an input is
 * closed). */
function endStreams(streams) {
  if (!streams) return;
  if (streams.input) closeHandle(streams.input);
  const out = streams.output;
  if (out && !out.destroyed) {
    if (out.writableFinished) {
      out.destroy();
      return;
    }
    if (!out.writableEnded) out.end();
    // Whatever the reader does, the descriptor goes once the data is out or the limit passed.
    const timer = setTimeout(() => out.destroy(), Math.max(streams.stallMs, 1));
    timer.unref();
    out.once('close', () => clearTimeout(timer));
    out.once('finish', () => out.destroy());
  }
}

module.exports = { parseStreams, splitStreams, asOutput, endStreams };
