// workerpool worker (process mode): registers the two tasks.
'use strict';
const workerpool = require('workerpool');
const { inc, spin } = require('./tasks');

workerpool.worker({ inc, spin });
