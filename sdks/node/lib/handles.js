'use strict';
// Descriptors passed with a run (docs/protocol.md §9). The supervisor sends each one as Node's
// own handle passing does (a NODE_HANDLE frame with the descriptor attached by SCM_RIGHTS), so
// Node itself acknowledges it and turns it into a net.Socket, net.Server or dgram.Socket, then
// emits the frame's `msg` — {type: "fd", id, index, of, kind} — with the handle. They wait here
// until the run that takes them (`fds: n`), or its cancel. Bounded: past MAX_PENDING handles
// held at once, a new one is closed at once (its run then fails with FdMissing).

const MAX_PENDING = 64;

/** Close a handle whatever its kind. */
function closeHandle(h) {
  if (!h) return;
  try {
    if (typeof h.destroy === 'function') h.destroy();
    else if (typeof h.close === 'function') h.close();
  } catch (_) {
    // already closed
  }
}

class PendingHandles {
  constructor() {
    this.byRun = new Map(); // run id -> handles, in order
    this.count = 0;
  }

  /** A `{type: "fd"}` message and its handle (undefined if Node could not make one). */
  offer(m, handle) {
    if (!handle) return;
    const list = this.byRun.get(m.id) || [];
    if (typeof m.id !== 'string' || this.count >= MAX_PENDING || m.index !== list.length) {
      closeHandle(handle);
      return;
    }
    // A connection stays writable after its peer half-closes (a line client that ends its
    // request with shutdown(SHUT_WR) still reads the answer). Set now, in the tick Node made
    // the socket: its end of file is read in a later one.
    if ('allowHalfOpen' in handle) handle.allowHalfOpen = true;
    list.push(handle);
    this.byRun.set(m.id, list);
    this.count += 1;
  }

  /** The `n` handles of run `id`; throws (after closing them) if they are not all there. */
  take(id, n) {
    const list = this.byRun.get(id) || [];
    this.byRun.delete(id);
    this.count -= list.length;
    if (list.length !== n) {
      list.forEach(closeHandle);
      const err = new Error(`the run says ${n} descriptors, ${list.length} arrived for it`);
      err.name = 'FdMissing';
      throw err;
    }
    return list;
  }

  /** A run that will not start: what it got is closed. */
  forget(id) {
    const list = this.byRun.get(id);
    if (!list) return;
    this.byRun.delete(id);
    this.count -= list.length;
    list.forEach(closeHandle);
  }
}

module.exports = { PendingHandles, closeHandle, MAX_PENDING };
