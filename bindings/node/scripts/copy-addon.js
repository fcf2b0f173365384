'use strict';
// Copies the cdylib cargo built to bindings/node/offload.node (CARGO_TARGET_DIR honoured).
// `node copy-addon.js debug` takes the debug build (the test command's: it shares the
// workspace's debug artifacts instead of compiling every dependency again in release).
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', '..', '..');
const target = process.env.CARGO_TARGET_DIR ? path.resolve(root, process.env.CARGO_TARGET_DIR) : path.join(root, 'target');
const names = { linux: 'liboffload_node.so', darwin: 'liboffload_node.dylib', win32: 'offload_node.dll' };
const profile = process.argv[2] === 'debug' ? 'debug' : 'release';
const from = path.join(target, profile, names[process.platform] || names.linux);
const to = path.join(__dirname, '..', 'offload.node');
fs.copyFileSync(from, `${to}.tmp`);
fs.renameSync(`${to}.tmp`, to);
process.stdout.write(`offload: ${from} -> ${to}\n`);
