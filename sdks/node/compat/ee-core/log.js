'use strict';
// Compatible stand-in for ee-core's `ee-core/log` (used when ee-core is not installed next to
// the job). ee-core logs to files through egg-logger; under offload a job's stdout and stderr
// are its logs, so info/debug go to stdout and warn/error to stderr, one line each:
//   2026-11-26 06:00:00.123 INFO 4242 [timer j7] message
// Exports both shapes: ee-core 4 ({ logger, coreLogger, createLog, loadLog }) and ee-core 2/3
// (Log.info(...), Log.logger, Log.create()).

const util = require('node:util');
const state = require('../../lib/state');

function stamp() {
  const d = new Date();
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return (
    `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
  );
}

function jobTag() {
  const ctx = state.als.getStore();
  return ctx && typeof ctx.id === 'string' ? ` [${ctx.job || 'job'} ${ctx.id}]` : '';
}

function createLogger(label) {
  const write = (stream, level, args) => {
    stream.write(`${stamp()} ${level} ${process.pid}${label}${jobTag()} ${util.format(...args)}\n`);
  };
  const logger = {
    info: (...args) => write(process.stdout, 'INFO', args),
    debug: (...args) => write(process.stdout, 'DEBUG', args),
    warn: (...args) => write(process.stderr, 'WARN', args),
    error: (...args) => write(process.stderr, 'ERROR', args),
    /** egg-logger's log(level, args). */
    log: (level, args) => {
      const l = String(level || 'info').toUpperCase();
      const fn = { ERROR: logger.error, WARN: logger.warn, DEBUG: logger.debug }[l] || logger.info;
      fn(...(Array.isArray(args) ? args : [args]));
    },
    /** egg-logger's write(msg): the text as is. */
    write: (msg) => process.stdout.write(`${msg}\n`),
  };
  return logger;
}

const logger = createLogger('');
const coreLogger = createLogger(' [ee-core]');
const loggers = {
  logger,
  coreLogger,
  get(name) {
    return name === 'coreLogger' ? coreLogger : logger;
  },
};

function createLog(_config) {
  return loggers;
}
function loadLog() {
  return loggers;
}

exports.logger = logger;
exports.coreLogger = coreLogger;
exports.createLog = createLog;
exports.loadLog = loadLog;
exports.create = createLog;
exports.info = (...args) => logger.info(...args);
exports.warn = (...args) => logger.warn(...args);
exports.error = (...args) => logger.error(...args);
exports.debug = (...args) => logger.debug(...args);
