// Tells the main process (receiver job) which process ran it: { pid }.
const { childMessage } = require('ee-core/message');
class WhoAmI {
  async handle(params) {
    childMessage.sendToMain('whoami-' + params.tag, { pid: process.pid });
  }
}
module.exports = WhoAmI;
