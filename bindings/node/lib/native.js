'use strict';
// Loads the addon built by `npm run build` (bindings/node/offload.node).
const path = require('node:path');

const FILE = path.join(__dirname, '..', 'offload.node');
let native;
try {
  native = require(FILE);
} catch (e) {
  const err = new Error(
    `offload: cannot load the native addon ${FILE} (${e.message}); build it with \`npm run build\` in bindings/node`,
  );
  err.code = 'ERR_OFFLOAD_ADDON';
  err.cause = e;
  throw err;
}

module.exports = native;
