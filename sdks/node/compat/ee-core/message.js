'use strict';
// Compatible stand-in for ee-core's `ee-core/message` (used when ee-core is not installed next
// to the job). `childMessage.send(event, data, receiver)` / `sendToMain(event, data)` become
// protocol `event` frames; inside a running job they carry that job's id.
//
// ee-core receivers: sendToMain -> "job" (the ChildJob / pool emits it); send() defaults to
// "task" (that process's own emitter, ee-core's `forkProcess`); anything else -> "all".

const state = require('../../lib/state');

// Loaded: the job uses ee-core, so its ChildJob runs follow ee-core's lifecycle (lib/lifecycle.js).
state.eeCore = true;

function receiverOf(receiver) {
  if (receiver === 'job' || receiver === 'childJob') return 'job';
  if (receiver === undefined || receiver === null || receiver === '' || receiver === 'task' || receiver === 'forkProcess') {
    return 'task';
  }
  return 'all';
}

function emitEvent(name, data, receiver) {
  const worker = state.worker;
  if (worker) {
    try {
      worker.sendEvent(String(name), data, receiver, worker.currentJob());
      return true;
    } catch (e) {
      process.stderr.write(`ee-core/message (offload): event "${name}" not sent: ${e.message}\n`);
      return false;
    }
  }
  // Not under an offload worker: speak ee-core's own wire format, like the real module.
  if (typeof process.send !== 'function' || !process.connected) return false;
  return process.send({ channel: 'ee#sendToMain', eventReceiver: receiver, event: name, data });
}

class ChildMessage {
  /** Send to the main process, for the ChildJob / ChildPoolJob (receiver "job"). */
  sendToMain(eventName, params = {}) {
    return emitEvent(eventName, params, 'job');
  }

  /** Send to the main process; receiver defaults to the process handle ("task"). */
  send(eventName, params = {}, receiver) {
    return emitEvent(eventName, params, receiverOf(receiver));
  }

  /** Exit the process (after the frames already queued are written). */
  exit(code = 0) {
    if (state.worker) return state.worker.exit(code);
    return process.exit(code);
  }

  /** Report an error to the main process (event "ee#showException", receiver "all"). */
  sendErrorToTerminal(err) {
    const text = err && typeof err === 'object' ? err.toString() : String(err);
    return emitEvent('ee#showException', text, 'all');
  }
}

const childMessage = new ChildMessage();

exports.ChildMessage = ChildMessage;
exports.childMessage = childMessage;
