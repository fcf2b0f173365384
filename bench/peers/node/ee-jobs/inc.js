// ee-core 4.x job (class shape, as ee-core's docs show): ee-core drops return values, so the
// answer goes back with childMessage.sendToMain, tagged with the task's id.
const { childMessage } = require('ee-core/message');

class Inc {
  handle(p) {
    childMessage.sendToMain('done', { i: p.i, v: p.x + 1 });
  }
}

module.exports = Inc;
