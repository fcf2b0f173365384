'use strict';
// An async iterator over values pushed by the library, with a bounded buffer.

const MAX_BUFFER = 10_000;

class EventStream {
  constructor(onReturn) {
    this.buffer = [];
    this.waiters = [];
    this.done = false;
    this.dropped = 0;
    this.onReturn = onReturn;
  }
  push(value) {
    if (this.done) return;
    const w = this.waiters.shift();
    if (w) return w({ value, done: false });
    if (this.buffer.length >= MAX_BUFFER) {
      this.buffer.shift();
      this.dropped += 1;
    }
    this.buffer.push(value);
  }
  end() {
    if (this.done) return;
    this.done = true;
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
  }
  next() {
    if (this.buffer.length) return Promise.resolve({ value: this.buffer.shift(), done: false });
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  return() {
    this.buffer = [];
    this.end();
    if (this.onReturn) this.onReturn();
    return Promise.resolve({ value: undefined, done: true });
  }
  [Symbol.asyncIterator]() {
    return this;
  }
}

let warned = false;

/** `n` events of a job were dropped on their way to JavaScript: the job sent them faster than
 * they were delivered, past what offload buffers (256 per run, 1,024 per process). Warns once
 * per process (`OFFLOAD_EVENTS_LOST`); the run's Task or JobRun also emits `lost`. */
function eventsLost(n) {
  if (warned) return;
  warned = true;
  process.emitWarning(
    `offload: events of a job were dropped (${n} at this first loss, the oldest): it sent them faster than they were delivered; each Task or JobRun emits 'lost' with its count; see "Events under a flood" in bindings/node/README.md`,
    { code: 'OFFLOAD_EVENTS_LOST' },
  );
}

module.exports = { EventStream, eventsLost };
