// Raw child_process.fork child: {i, t, x} in, {i, v} out over Node's IPC channel (JSON).
'use strict';
const { inc, spin } = require('./tasks');

process.on('message', (m) => {
  const v = m.t === 's' ? spin(m.x) : inc(m.x);
  process.send({ i: m.i, v });
});
