// ee-core 4.x job: busy-waits 1 ms (no sleep), then answers with sendToMain.
const { childMessage } = require('ee-core/message');

class Spin {
  handle(p) {
    const end = process.hrtime.bigint() + 1000000n;
    while (process.hrtime.bigint() < end);
    childMessage.sendToMain('done', { i: p.i, v: p.x });
  }
}

module.exports = Spin;
