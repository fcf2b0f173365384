// Sends `count` messages to the process emitter as fast as it can, then exits (ee-core style).
const { childMessage } = require('ee-core/message');
const { exit } = require('ee-core/ps');
class Chatty {
  async handle(params) {
    for (let i = 0; i < params.count; i++) childMessage.send('chat-' + params.jobId, { i });
    exit();
  }
}
module.exports = Chatty;
