'use strict';
// The worker's settings: protocol constants, its environment (docs/protocol.md §1), and the
// two ways it speaks to its supervisor outside the channel (stderr, exit status 2).

const fs = require('node:fs');
const path = require('node:path');

const PROTOCOL = 1;
/** Protocol 1.1: descriptors passed with a run (§9), as Node handles ("handles"). */
const PROTOCOL_MINOR = 1;
const CAPABILITIES = Object.freeze(['cancel', 'call', 'progress', 'events', 'shutdown', 'ping', 'handles']);
const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;
/** Grace period of SIGTERM (and of a `shutdown` without grace_ms). */
const DEFAULT_GRACE_MS = 5000;
/** After shutdown cancelled the jobs still running, how long they get to answer before the
 * worker answers `Cancelled` for them and exits. */
const CANCEL_WAIT_MS = 1000;
/** At shutdown, the least time the modules' unload() get, however little grace is left. */
const UNLOAD_MIN_MS = 1000;
/** How long an exit waits for queued frames to be written. */
const FLUSH_WAIT_MS = 1000;
/** What `ctx.sent()` lets wait to be written to the supervisor: 1 MiB. */
const SEND_HIGH_WATER = 1024 * 1024;
const MAX_TIMER_MS = 2 ** 31 - 1;

function writeStderr(text) {
  try {
    fs.writeSync(2, text);
  } catch {
    // stderr closed: nothing left to tell
  }
}

/** A supervisor broke the protocol: say so on stderr and exit with status 2 (§6). */
function protocolError(what) {
  writeStderr(`offload worker: protocol error: ${what}\n`);
  process.exit(2);
}

class ConfigError extends Error {}

function positiveInt(env, key, dflt) {
  const raw = env[key];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new ConfigError(`${key}=${raw} is not an integer >= 1`);
  return n;
}

/** The worker's settings from its environment (docs/protocol.md §1). Throws ConfigError. */
function readConfig(env = process.env) {
  const raw = env.OFFLOAD_PROTOCOL;
  // Unset means a supervisor from before OFFLOAD_PROTOCOL (or a test): assume version 1.
  const offered = raw === undefined || raw === '' ? PROTOCOL : Number(raw);
  if (!Number.isInteger(offered) || offered < PROTOCOL) {
    throw new ConfigError(
      `unsupported protocol: the supervisor offers OFFLOAD_PROTOCOL=${raw}, this worker speaks protocol ${PROTOCOL}`,
    );
  }
  return {
    protocol: PROTOCOL,
    maxFrame: positiveInt(env, 'OFFLOAD_MAX_FRAME', DEFAULT_MAX_FRAME),
    concurrency: positiveInt(env, 'OFFLOAD_CONCURRENCY', 1),
    jobsDir: path.resolve(env.OFFLOAD_JOBS_DIR || './jobs'),
  };
}

module.exports = {
  SEND_HIGH_WATER,
  PROTOCOL,
  CAPABILITIES,
  PROTOCOL_MINOR,
  DEFAULT_MAX_FRAME,
  DEFAULT_GRACE_MS,
  CANCEL_WAIT_MS,
  UNLOAD_MIN_MS,
  FLUSH_WAIT_MS,
  MAX_TIMER_MS,
  writeStderr,
  protocolError,
  ConfigError,
  readConfig,
};
