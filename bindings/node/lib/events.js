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

module.exports = { EventStream };
