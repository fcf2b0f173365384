'use strict';
// Job files: resolving a job name in the jobs folder, loading it (CommonJS or ESM), recognising
// its shape (class, function, object with handle()), running it and calling its functions, and
// hot reload (unload() then eviction from the module cache).

const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { JobNotFoundError, NoSuchFunctionError } = require('./errors');
const { enableEsmHooks } = require('./hooks');
const { isSeedModule, seedHandler } = require('./background-service');

const EXTENSIONS = ['.js', '.mjs', '.cjs'];

// ---------------------------------------------------------------------------------------------
// Shapes

/** Whether `fn` must be called with `new`: class syntax, a compiled class, or a constructor
 * whose prototype has handle() (ee-core's own test, is-type-of's `is.class`, accepts the first
 * two; bytecode-compiled classes announce themselves with a static toString "[class X]"). */
function isClass(fn) {
  if (typeof fn !== 'function') return false;
  const src = Function.prototype.toString.call(fn);
  if (/^class[\s{]/.test(src)) return true;
  let shown;
  try {
    shown = String(fn);
  } catch {
    shown = '';
  }
  if (shown.startsWith('[class')) return true;
  return !!fn.prototype && typeof fn.prototype.handle === 'function';
}

function isNamespace(mod) {
  return mod !== null && typeof mod === 'object' && mod[Symbol.toStringTag] === 'Module';
}

/** The handler a module exports: `module.exports`, `exports.default` / an ESM default export,
 * or (ESM, or CJS with `exports.handle`) the module itself as an object with handle(). */
function pickTarget(mod) {
  if (isNamespace(mod)) {
    const d = mod.default;
    if (typeof d === 'function') return d;
    if (d !== null && typeof d === 'object' && typeof d.handle === 'function') {
      // `export default { handle }` — unless this is a CJS module seen through import() whose
      // module.exports is the same object.
      return d;
    }
    return mod;
  }
  if (mod !== null && typeof mod === 'object' && typeof mod.handle !== 'function') {
    const d = mod.default;
    if (typeof d === 'function' || (d !== null && typeof d === 'object' && typeof d.handle === 'function')) {
      return d;
    }
  }
  return mod;
}

/**
 * A job definition: what the worker runs. `kind` is "class", "function" or "object".
 * `exports` is the whole module (for call() lookups and unload()).
 */
class JobDefinition {
  constructor({ name, file, target, exports }) {
    this.name = name;
    this.file = file || null;
    this.exports = exports === undefined ? target : exports;
    this.target = target;
    if (isClass(target)) this.kind = 'class';
    else if (typeof target === 'function') this.kind = 'function';
    else if (target !== null && typeof target === 'object' && typeof target.handle === 'function') {
      this.kind = 'object';
    } else if (isSeedModule(target)) {
      // The seed's TExecute / UExecute module (lib/background-service.js).
      this.kind = 'function';
      this.target = seedHandler(target);
    } else {
      const where = file ? `${file} ` : '';
      throw JobNotFoundError.refusal(
        `job "${name}": ${where}exports no handler (expected a class with handle(), a function, ` +
          `an object with handle(), or TExecute/UExecute; got ${describe(target)})`,
      );
    }
    // Instances of this class whose run is in progress, in start order: a `call` reaches the
    // latest (ee-core's callFunc: pause or resume the running timer).
    this.live = [];
    // How many more runs it counts as slow (lib/starter.js: a run kept the JavaScript thread
    // for HOLD_MS or more lately): while > 0, the answers queued before its run go out first.
    this.slow = 0;
  }

  /**
   * Run the job. Native: handle(params, ctx). With `args` (ee-core's jobParams): exactly what
   * ee-core does — `new Job(...args)` + `handle(...args)`, or `fn(args)` for a function.
   */
  run(params, args, ctx) {
    const legacy = Array.isArray(args);
    const t = this.target;
    switch (this.kind) {
      case 'class': {
        const instance = legacy ? new t(...args) : new t(params, ctx);
        if (typeof instance.handle !== 'function') {
          throw JobNotFoundError.refusal(`job "${this.name}": class ${t.name || '(anonymous)'} has no handle() method`);
        }
        this.live.push(instance);
        const done = () => {
          const i = this.live.lastIndexOf(instance);
          if (i !== -1) this.live.splice(i, 1);
        };
        let out;
        try {
          out = legacy ? instance.handle(...args) : instance.handle(params, ctx);
        } catch (e) {
          done();
          throw e;
        }
        // A held ee-core run (lib/lifecycle.js) stays reachable until it is answered.
        const until = ctx && ctx.heldUntil;
        const later = () => {
          if (until) until.then(done);
          else done();
        };
        if (out !== null && typeof out === 'object' && typeof out.then === 'function') {
          return Promise.resolve(out).finally(later);
        }
        later();
        return out;
      }
      case 'function':
        return legacy ? t(args) : t(params, ctx);
      default:
        return legacy ? t.handle(...args) : t.handle(params, ctx);
    }
  }

  /**
   * Call a function of the job (docs/protocol.md, `call`): for a class, a method of the running
   * instance of this file (the latest started, when several run), else of a fresh `new Job()`
   * made with no arguments; for a function or an object, one of its own functions; else a
   * function the module exports.
   */
  call(func, args, _ctx) {
    const list = Array.isArray(args) ? args : [];
    let holder;
    if (this.kind === 'class') {
      holder = this.live.length > 0 ? this.live[this.live.length - 1] : new this.target();
    } else {
      holder = this.target;
    }
    let fn = findFunction(holder, func);
    if (!fn && this.exports !== holder) {
      holder = this.exports;
      fn = findFunction(holder, func);
    }
    if (!fn) {
      throw NoSuchFunctionError.refusal(`job "${this.name}" has no function "${func}"`);
    }
    return fn.apply(holder, list);
  }
}

const FORBIDDEN = new Set(['constructor', '__proto__', 'prototype', '__defineGetter__', '__defineSetter__']);

/** A function property of `obj` or its prototypes, stopping before Object.prototype and
 * Function.prototype (so `toString`, `call`, `bind`... are not reachable). */
function findFunction(obj, name) {
  if (typeof name !== 'string' || name === '' || FORBIDDEN.has(name)) return null;
  if (obj === null || (typeof obj !== 'object' && typeof obj !== 'function')) return null;
  for (let o = obj; o !== null && o !== Object.prototype && o !== Function.prototype; o = Object.getPrototypeOf(o)) {
    const desc = Object.getOwnPropertyDescriptor(o, name);
    if (!desc) continue;
    const value = 'value' in desc ? desc.value : desc.get ? obj[name] : undefined;
    return typeof value === 'function' ? value : null;
  }
  return null;
}

/** A module's `unload()` export, or the seed's `Unload()`. */
function unloadOf(exports) {
  return findFunction(exports, 'unload') || findFunction(exports, 'Unload');
}

function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (isNamespace(v)) return `an ES module with exports [${Object.keys(v).join(', ')}]`;
  if (typeof v === 'object') return `an object with keys [${Object.keys(v).slice(0, 10).join(', ')}]`;
  return typeof v;
}

// ---------------------------------------------------------------------------------------------
// Resolution

/** Why a job name is refused, or null. Names are `/`-separated, relative, without `..`. */
function invalidName(name) {
  if (typeof name !== 'string' || name === '') return 'the job name is empty';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'the job name contains a control character';
  if (path.isAbsolute(name) || name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:/.test(name)) {
    return 'the job name is an absolute path';
  }
  if (name.split(/[\\/]/).includes('..')) return 'the job name escapes the jobs folder ("..")';
  return null;
}

function isFile(p) {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

const packageTypeCache = new Map();

/** Whether Node treats `file` as an ES module: `.mjs`, or `.js` under a package.json with
 * "type": "module". */
function isEsmFile(file) {
  const ext = path.extname(file);
  if (ext === '.mjs') return true;
  if (ext !== '.js') return false;
  return packageType(path.dirname(file)) === 'module';
}

function packageType(dir) {
  if (packageTypeCache.has(dir)) return packageTypeCache.get(dir);
  let type = 'commonjs';
  const pkg = path.join(dir, 'package.json');
  let found = false;
  try {
    const json = JSON.parse(fs.readFileSync(pkg, 'utf8'));
    found = true;
    if (json && json.type === 'module') type = 'module';
  } catch (e) {
    if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR') found = true; // unreadable or invalid: stop here
  }
  if (!found) {
    const parent = path.dirname(dir);
    if (parent !== dir && path.basename(dir) !== 'node_modules') type = packageType(parent);
  }
  packageTypeCache.set(dir, type);
  return type;
}

// ---------------------------------------------------------------------------------------------
// The file-based job loader (what the runner uses)

class FileJobs {
  constructor({ jobsDir }) {
    this.jobsDir = path.resolve(jobsDir || './jobs');
    this.byName = new Map(); // job name -> file
    this.byFile = new Map(); // file -> Promise<JobDefinition>
    this.versions = new Map(); // file -> ESM reload generation
    this.loaded = new Map(); // file -> JobDefinition, once its load succeeded
    this.ready = new Map(); // job name or path as a frame gives it -> JobDefinition (settled())
  }

  /**
   * The definition of a job whose file is loaded already, without a promise; null when it is
   * not (or the name is refused): then resolve() loads it or gives the error.
   */
  settled(job, file) {
    const key = typeof file === 'string' && file !== '' ? file : job;
    const hit = this.ready.get(key);
    if (hit !== undefined) return hit;
    let resolved;
    try {
      resolved = this.resolveFile(job, file);
    } catch {
      return null;
    }
    const def = this.loaded.get(resolved);
    if (def === undefined) return null;
    this.ready.set(key, def);
    return def;
  }

  /** The file of `job` (a name in the jobs folder) or of `file` (an absolute path the
   * supervisor already validated). Throws JobNotFoundError. */
  resolveFile(job, file) {
    if (typeof file === 'string' && file !== '' && path.isAbsolute(file)) {
      // A file already loaded is not stat()ed again on every run (that was a quarter of a
      // pool worker's time per tiny job); hot reload replaces workers when files change.
      if (!this.byFile.has(file) && !isFile(file)) {
        throw JobNotFoundError.refusal(`job file ${file} does not exist`);
      }
      return file;
    }
    // A relative `path` (an ee-core jobPath such as "echo" or "./timer.js") is a name too.
    const name = typeof file === 'string' && file !== '' ? file : job;
    const cached = this.byName.get(name);
    if (cached !== undefined) return cached;
    const why = invalidName(name);
    if (why) throw JobNotFoundError.refusal(`job ${JSON.stringify(name)} refused: ${why}`);
    const base = path.resolve(this.jobsDir, name);
    const rel = path.relative(this.jobsDir, base);
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
      throw JobNotFoundError.refusal(`job ${JSON.stringify(name)} refused: the job name escapes the jobs folder`);
    }
    const candidates = [];
    if (EXTENSIONS.includes(path.extname(base))) candidates.push(base);
    for (const ext of EXTENSIONS) candidates.push(base + ext);
    for (const ext of EXTENSIONS) candidates.push(path.join(base, 'index' + ext));
    for (const c of candidates) {
      if (isFile(c)) {
        this.byName.set(name, c);
        return c;
      }
    }
    throw JobNotFoundError.refusal(
      `job ${JSON.stringify(name)} not found in ${this.jobsDir} (tried ${candidates
        .map((c) => path.relative(this.jobsDir, c))
        .join(', ')})`,
    );
  }

  /** The definition of a job, loading its file on first use (cached per file). */
  resolve(job, file) {
    const resolved = this.resolveFile(job, file);
    let def = this.byFile.get(resolved);
    if (!def) {
      const name = typeof job === 'string' && job !== '' ? job : path.basename(resolved).replace(/\.[cm]?js$/, '');
      def = this.load(resolved, name);
      this.byFile.set(resolved, def);
      // A file that fails to load is tried again next time (it may be fixed meanwhile).
      def.then(
        (d) => {
          if (this.byFile.get(resolved) === def) this.loaded.set(resolved, d);
        },
        () => {
          if (this.byFile.get(resolved) === def) this.byFile.delete(resolved);
        },
      );
    }
    return def;
  }

  /** Load `file` and recognise its shape. */
  async load(file, name = path.basename(file).replace(/\.[cm]?js$/, '')) {
    const mod = await this.importFile(file);
    return new JobDefinition({ name, file, target: pickTarget(mod), exports: mod });
  }

  async importFile(file) {
    if (!isEsmFile(file)) {
      try {
        return require(file);
      } catch (e) {
        if (e && (e.code === 'ERR_REQUIRE_ESM' || e.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
          return this.importEsm(file);
        }
        throw e;
      }
    }
    return this.importEsm(file);
  }

  async importEsm(file) {
    enableEsmHooks();
    const v = this.versions.get(file);
    // ES modules cannot be evicted from Node's cache: a reload imports a new URL instead.
    const url = pathToFileURL(file).href + (v ? `?offload-reload=${v}` : '');
    return import(url);
  }

  /**
   * Hot reload: call the job's optional `unload()` export, then forget the module so the next
   * run loads the file again (CommonJS: evicted from require.cache with the modules it loaded
   * from the same folder tree, outside node_modules; ESM: the next import uses a new URL, the
   * old module stays in memory — Node offers no way to free it).
   */
  async reload(fileOrName) {
    let file = fileOrName;
    if (!path.isAbsolute(file)) file = this.resolveFile(file);
    const pending = this.byFile.get(file);
    this.byFile.delete(file);
    this.loaded.delete(file);
    this.ready.clear();
    for (const [name, f] of this.byName) if (f === file) this.byName.delete(name);
    packageTypeCache.clear();
    let unloadError = null;
    if (pending) {
      let def = null;
      try {
        def = await pending;
      } catch {
        def = null;
      }
      const unload = def && unloadOf(def.exports);
      if (unload) {
        try {
          await unload.call(def.exports);
        } catch (e) {
          unloadError = e;
        }
      }
    }
    if (isEsmFile(file) || !require.cache[file]) {
      this.versions.set(file, (this.versions.get(file) || 0) + 1);
    }
    evict(file, path.dirname(file));
    if (unloadError) throw unloadError;
  }

  /**
   * Graceful shutdown: call the optional `unload()` export of every job module loaded (each
   * once, all started at once; async ones awaited). Resolves when all have settled; an error is
   * given to `onError(file, err)` instead of rejecting. The caller bounds the time.
   */
  unloadAll(onError) {
    const pending = [...this.byFile.entries()];
    this.byFile.clear();
    this.loaded.clear();
    this.ready.clear();
    return Promise.all(
      pending.map(async ([file, p]) => {
        let def;
        try {
          def = await p;
        } catch {
          return; // never loaded: nothing to unload
        }
        try {
          const unload = unloadOf(def.exports);
          if (unload) await unload.call(def.exports);
        } catch (e) {
          onError(file, e);
        }
      }),
    );
  }
}

/** Remove `file` and the modules it loaded below `root` (outside node_modules) from
 * require.cache, and from their parents' `children`. */
function evict(file, root, seen = new Set()) {
  const m = require.cache[file];
  if (!m || seen.has(file)) return;
  seen.add(file);
  delete require.cache[file];
  for (const child of m.children || []) {
    const rel = path.relative(root, child.id);
    if (!rel.startsWith('..') && !path.isAbsolute(rel) && !child.id.split(path.sep).includes('node_modules')) {
      evict(child.id, root, seen);
    }
  }
  for (const other of Object.values(require.cache)) {
    if (other && other.children) {
      const i = other.children.indexOf(m);
      if (i !== -1) other.children.splice(i, 1);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// In-code handlers (what serve() uses)

/** Jobs registered in code: name -> class | function | object with handle(). Lookup as in
 * the Rust SDK: exact name, then its last segment, then a handler named "default". */
class HandlerJobs {
  constructor(handlers) {
    this.defs = new Map();
    for (const [name, target] of Object.entries(handlers || {})) {
      this.defs.set(name, new JobDefinition({ name, target }));
    }
  }

  resolve(job) {
    const def = this.settled(job);
    if (!def) {
      const name = typeof job === 'string' ? job : '';
      return Promise.reject(JobNotFoundError.refusal(`no handler for job ${JSON.stringify(name)}`));
    }
    return Promise.resolve(def);
  }

  /** The handler of `job`, or null. */
  settled(job) {
    const name = typeof job === 'string' ? job : '';
    return this.defs.get(name) || this.defs.get(name.split('/').pop()) || this.defs.get('default') || null;
  }
}

module.exports = {
  FileJobs,
  HandlerJobs,
  JobDefinition,
  isClass,
  pickTarget,
  findFunction,
  invalidName,
  isEsmFile,
};
