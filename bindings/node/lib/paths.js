'use strict';
// ee-core style job paths (`./jobs/example/timer`), resolved against a base folder and refused
// when they leave it. Results are cached (ee-core stat()ed the file on every run).

const fs = require('node:fs');
const path = require('node:path');
const { makeError } = require('./errors');

const SUFFIXES = ['', '.js', '.mjs', '.cjs', '/index.js', '/index.mjs', '/index.cjs'];
const CACHE_MAX = 4096;

function inside(base, file) {
  const rel = path.relative(base, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

function checkSpec(spec) {
  if (typeof spec !== 'string' || spec === '' || spec.length > 4096 || /[\0-\x1f]/.test(spec)) {
    throw makeError('InvalidJob', `job ${JSON.stringify(spec)}: a job path is a non-empty string of at most 4096 characters without control characters`, { job: spec });
  }
}

class PathResolver {
  constructor(base) {
    this.base = path.resolve(base);
    this.realBase = null;
    this.cache = new Map();
  }

  /** `{file, name}`: the real file and its name relative to the base (no extension). */
  resolve(spec) {
    checkSpec(spec);
    const hit = this.cache.get(spec);
    if (hit) return hit;
    const abs = path.resolve(this.base, spec);
    if (!inside(this.base, abs)) {
      throw makeError('InvalidJob', `job ${JSON.stringify(spec)} leaves the base folder ${this.base}`, { job: spec });
    }
    if (this.realBase === null) {
      try {
        this.realBase = fs.realpathSync(this.base);
      } catch {
        throw makeError('JobNotFound', `job ${JSON.stringify(spec)}: the base folder ${this.base} does not exist`, { job: spec });
      }
    }
    for (const suffix of SUFFIXES) {
      const candidate = abs + suffix;
      let st;
      try {
        st = fs.statSync(candidate);
      } catch {
        continue;
      }
      if (!st.isFile()) continue;
      const real = fs.realpathSync(candidate);
      if (!inside(this.realBase, real)) {
        throw makeError('InvalidJob', `job ${JSON.stringify(spec)} resolves to ${real}, outside the base folder ${this.realBase}`, { job: spec });
      }
      const rel = path.relative(this.realBase, real).split(path.sep).join('/');
      const name = rel.replace(/(\/index)?\.(c|m)?js$/, '');
      const out = { file: real, name };
      if (this.cache.size < CACHE_MAX) this.cache.set(spec, out);
      return out;
    }
    throw makeError('JobNotFound', `job ${JSON.stringify(spec)}: no file ${abs}{,.js,.mjs,.cjs,/index.js} in ${this.base}`, { job: spec });
  }

  /** Forget cached resolutions (job files added, moved or removed). */
  clear() {
    this.cache.clear();
  }
}

module.exports = { PathResolver, inside };
