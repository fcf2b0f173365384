'use strict';
// Module resolution fallbacks, so that job files run unchanged whether or not their dependencies
// are installed next to them:
//   - `ee-core/message`, `ee-core/ps`, `ee-core/log`, `ee-core/jobs/baseJobClass`: the real
//     ee-core package when it resolves from the job's folder, else compat/ee-core/*;
//   - `offload-worker`: an installed copy when there is one, else this SDK.
// CommonJS: a wrapper around Module._resolveFilename that only acts when the normal resolution
// fails. ES modules: a resolve hook registered with module.register() (Node >= 20.6, 18.19),
// installed on the first import() of a job file (it starts a loader thread, ~40 ms).

const Module = require('node:module');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const state = require('./state');

const ROOT = path.join(__dirname, '..');
const COMPAT = path.join(ROOT, 'compat', 'ee-core');

/** Specifier -> fallback file. */
const FALLBACKS = {
  'ee-core/message': path.join(COMPAT, 'message.js'),
  'ee-core/message/index': path.join(COMPAT, 'message.js'),
  'ee-core/message/index.js': path.join(COMPAT, 'message.js'),
  'ee-core/ps': path.join(COMPAT, 'ps.js'),
  'ee-core/ps/index': path.join(COMPAT, 'ps.js'),
  'ee-core/ps/index.js': path.join(COMPAT, 'ps.js'),
  'ee-core/log': path.join(COMPAT, 'log.js'),
  'ee-core/log/index': path.join(COMPAT, 'log.js'),
  'ee-core/log/index.js': path.join(COMPAT, 'log.js'),
  'ee-core/jobs/baseJobClass': path.join(COMPAT, 'jobs', 'baseJobClass.js'),
  'ee-core/jobs/baseJobClass.js': path.join(COMPAT, 'jobs', 'baseJobClass.js'),
  'offload-worker': path.join(ROOT, 'index.js'),
  'offload-worker/runner': path.join(ROOT, 'runner.js'),
};

const NOT_FOUND = new Set(['MODULE_NOT_FOUND', 'ERR_MODULE_NOT_FOUND', 'ERR_PACKAGE_PATH_NOT_EXPORTED']);

let cjsInstalled = false;
function installCjsFallbacks() {
  if (cjsInstalled) return;
  cjsInstalled = true;
  const original = Module._resolveFilename;
  Module._resolveFilename = function offloadResolveFilename(request, parent, isMain, options) {
    // A job that requires ee-core follows ee-core's ChildJob lifecycle (lib/lifecycle.js).
    if (typeof request === 'string' && (request === 'ee-core' || request.startsWith('ee-core/'))) state.eeCore = true;
    try {
      return original.call(this, request, parent, isMain, options);
    } catch (e) {
      if (e && NOT_FOUND.has(e.code) && Object.prototype.hasOwnProperty.call(FALLBACKS, request)) {
        return FALLBACKS[request];
      }
      throw e;
    }
  };
}

let esmState = 'off'; // 'off' | 'on' | 'unavailable'
function enableEsmHooks() {
  if (esmState !== 'off') return esmState === 'on';
  if (typeof Module.register !== 'function') {
    esmState = 'unavailable';
    return false;
  }
  const data = { fallbacks: {} };
  for (const [spec, file] of Object.entries(FALLBACKS)) data.fallbacks[spec] = pathToFileURL(file).href;
  data.fallbacks['offload-worker'] = pathToFileURL(path.join(ROOT, 'index.mjs')).href;
  Module.register(pathToFileURL(path.join(__dirname, 'esm-hooks.mjs')).href, { data });
  esmState = 'on';
  return true;
}

module.exports = { installCjsFallbacks, enableEsmHooks, FALLBACKS };
