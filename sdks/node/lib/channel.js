'use strict';
// The worker's end of Node's IPC channel, below `process.send()` and `process.on('message')`:
// frames written together and the size of what was read.
//
// Out: every frame the worker sends is serialized once (the size check and the write use the
// same text) and the frames of one tick go out in ONE write: they are queued in order and written
// on `process.nextTick`, or at once when something needs them gone (`drain()`). A job answered
// in a tick where 64 others were answered costs 1/64 of a system call instead of one.
//
// In: Node parses each line of the channel into an object before 'message' fires and offers no
// hook to look at the line. The worker wraps the pipe's `onread` to count the bytes of each read
// since the last line break: no line completed in that read can be longer, so when that count is
// within OFFLOAD_MAX_FRAME the frames it delivers need no size check (`boundedBy`).
//
// Both reach below the public API: the pipe (`process[kChannelHandle]`), and
// `process.binding('stream_wrap')` for its `WriteWrap` request and the read's byte count, exactly
// what Node's own `process.send` uses (lib/internal/child_process.js). Everything is detected at
// start; when any piece is missing (another Node version, the `advanced` serialization, Node
// started with --pending-deprecation, where process.binding() warns) the worker falls back to
// `process.send()` per frame and to re-serializing each received frame to measure it — slower,
// same behaviour.

/** What the fast path needs, or null when this Node does not offer it. */
function lowLevel() {
  try {
    if (process.execArgv.includes('--pending-deprecation') || /--pending-deprecation/.test(process.env.NODE_OPTIONS || '')) {
      return null;
    }
    const key = Object.getOwnPropertySymbols(process).find((s) => s.description === 'kChannelHandle');
    const pipe = key && process[key];
    if (!pipe || typeof pipe.writeUtf8String !== 'function' || typeof pipe.onread !== 'function') return null;
    // Node's json serialization keeps its line buffer under this symbol (the `advanced` one does not).
    if (!Object.getOwnPropertySymbols(pipe).some((s) => s.description === 'kJSONBuffer')) return null;
    const binding = process.binding('stream_wrap');
    const { WriteWrap, streamBaseState, kLastWriteWasAsync, kReadBytesOrError, kArrayBufferOffset } = binding;
    if (typeof WriteWrap !== 'function' || !streamBaseState) return null;
    if (![kLastWriteWasAsync, kReadBytesOrError, kArrayBufferOffset].every(Number.isInteger)) return null;
    return { pipe, WriteWrap, streamBaseState, kLastWriteWasAsync, kReadBytesOrError, kArrayBufferOffset };
  } catch {
    return null;
  }
}

class Channel {
  /**
   * @param {(frames: number, err: Error | null) => void} onWritten told, synchronously, when
   *   frames were handed to the kernel (or failed): the sender's count of frames in flight.
   */
  constructor(onWritten = () => {}) {
    this.low = lowLevel();
    this.onWritten = onWritten;
    this.text = ''; // queued frames, each followed by "\n"
    this.frames = 0; // how many
    this.callbacks = []; // the callbacks given with them (few frames have one)
    this.scheduled = false;
    this.corked = 0;
    // In: bytes since the last line break before the current read, and the longest line the
    // current read can complete (Infinity: unknown).
    this.carry = 0;
    this.bound = Infinity;
    this.unread = -1; // frames of the latest read not dispatched yet (-1: unknown, or several)
    this.flushNow = () => this.drain();
    // The pipe under process.send, for its write queue (`unsent`), on either path.
    this.pipe = this.low ? this.low.pipe : channelHandle();
    if (this.low) this.watchReads();
  }

  /** Bytes queued and not yet handed to the kernel: this tick's frames, and the pipe's own
   * write queue (what the supervisor has not read yet once the socket is full). */
  unsent() {
    const pipe = this.pipe;
    const queued = pipe && typeof pipe.writeQueueSize === 'number' ? pipe.writeQueueSize : 0;
    return this.text.length + queued;
  }

  /** Whether the fast path is in use (for tests and benchmarks). */
  get fast() {
    return this.low !== null;
  }

  // --- out ---------------------------------------------------------------------------------

  /**
   * Queue `msg`, already serialized as `line` (no line break), for the next write. `cb(err)`
   * runs (asynchronously, as with `process.send`) once the frame was handed to the kernel, or
   * failed. Returns false when the channel is closed (the frame is dropped, `cb` gets an
   * error), like `process.send`; `onWritten` is then not told.
   */
  send(msg, line, cb) {
    if (!process.connected) {
      if (cb) process.nextTick(cb, new Error('the channel is closed'));
      return false;
    }
    // Without the pipe, or while Node queues frames behind a handle it sends (its own order):
    // process.send, after what is already queued.
    if (this.low === null || process._handleQueue) {
      this.drain();
      return process.send(msg, (err) => {
        this.onWritten(1, err || null);
        if (cb) cb(err);
      });
    }
    this.text += line;
    this.text += '\n';
    this.frames++;
    if (cb) this.callbacks.push(cb);
    if (!this.scheduled && this.corked === 0) {
      this.scheduled = true;
      process.nextTick(this.flushNow);
    }
    return true;
  }

  /** Hold the frames queued from now until `uncork()`, which writes them (no tick scheduled). */
  cork() {
    this.corked++;
  }

  uncork() {
    if (--this.corked === 0 && !this.scheduled) this.drain();
  }

  /** Write everything queued now, in one write. */
  drain() {
    this.scheduled = false;
    if (this.frames === 0) return;
    const text = this.text;
    const frames = this.frames;
    // The callbacks of these frames only (a later frame's must wait for its own write).
    const callbacks = this.callbacks.length > 0 ? this.callbacks : null;
    if (callbacks !== null) this.callbacks = [];
    this.text = '';
    this.frames = 0;
    if (!process.connected) {
      this.written(frames, callbacks, new Error('the channel is closed'));
      return;
    }
    const { pipe, WriteWrap, streamBaseState, kLastWriteWasAsync } = this.low;
    const req = new WriteWrap();
    const status = pipe.writeUtf8String(req, text);
    if (status !== 0) {
      this.written(frames, callbacks, writeError(status));
    } else if (streamBaseState[kLastWriteWasAsync]) {
      // libuv keeps the loop alive while the write is pending (an active request).
      req.oncomplete = (s) => this.written(frames, callbacks, s < 0 ? writeError(s) : null);
    } else {
      this.written(frames, callbacks, null);
    }
  }

  written(frames, callbacks, err) {
    this.onWritten(frames, err);
    if (callbacks !== null) process.nextTick(callAll, callbacks, err);
  }

  // --- in ----------------------------------------------------------------------------------

  watchReads() {
    const { pipe, streamBaseState, kReadBytesOrError, kArrayBufferOffset } = this.low;
    const original = pipe.onread;
    const self = this;
    pipe.onread = function onread(arrayBuffer) {
      if (arrayBuffer) {
        const nread = streamBaseState[kReadBytesOrError];
        const offset = streamBaseState[kArrayBufferOffset];
        // Node emits the frames of this read on process.nextTick, before the next read.
        self.bound = self.carry + nread;
        const bytes = new Uint8Array(arrayBuffer, offset, nread);
        const nl = bytes.lastIndexOf(10);
        self.carry = nl === -1 ? self.carry + nread : nread - 1 - nl;
        // A read of exactly one line (one round trip at a time) is known to be dispatched
        // with its frame; for more, counting them cost more than the microtask it saves.
        self.unread = nl !== -1 && bytes.indexOf(10) === nl ? 1 : -1;
      } else {
        self.bound = Infinity;
        self.unread = -1;
      }
      return original.call(this, arrayBuffer);
    };
  }

  /**
   * A frame without a handle reached the worker: whether it was the last frame of its read, so
   * that every frame read with it was dispatched already. Node emits one 'message' or
   * 'internalMessage' per line of a read, in order, on process.nextTick, before the next read;
   * internal lines (never seen here) keep the count above zero, which only costs the fast path.
   */
  dispatched() {
    if (this.unread <= 0) return false;
    return --this.unread === 0;
  }

  /** Whether every frame delivered by the latest read is at most `max` bytes long. */
  boundedBy(max) {
    // The line's own "\n" was in the read too.
    return this.bound - 1 <= max;
  }
}

/** The IPC pipe below `process.send` (for its write queue), or null where Node hides it. */
function channelHandle() {
  const key = Object.getOwnPropertySymbols(process).find((sym) => sym.description === 'kChannelHandle');
  return (key && process[key]) || null;
}

function writeError(status) {
  return Object.assign(new Error(`write to the channel failed (status ${status})`), { errno: status });
}

function callAll(callbacks, err) {
  for (const cb of callbacks) cb(err);
}

module.exports = { Channel };
