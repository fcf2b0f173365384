// ee-core's positional jobParams: made with `new Sum(a, b)`, `handle(a, b)`; tells the main
// process (receiver job) the sum and which process ran it.
const { childMessage } = require('ee-core/message');
class Sum {
  constructor(a, b) {
    this.made = [a, b];
  }
  async handle(a, b) {
    childMessage.sendToMain('sum-' + a + '-' + b, { sum: a + b, made: this.made, pid: process.pid });
  }
}
module.exports = Sum;
