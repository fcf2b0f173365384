'use strict';
// ee-core's `ee-core/jobs` API on offload: require('<repo>/bindings/node/ee-core').
module.exports = require('./lib/ee-core');
