// piscina worker (a thread): the tasks as named exports (`pool.run(x, { name })`).
'use strict';
const { inc, spin } = require('./tasks');

module.exports = { inc, spin };
