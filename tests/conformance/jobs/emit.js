'use strict';
// Fixture "emit": emits event params.name with data params.data and receiver "job", then result
// null. Written as an unchanged ee-core job: it extends ee-core's BaseJobClass and uses
// childMessage.sendToMain (receiver "job"); without ee-core installed the runner provides both.

const BaseJobClass = require('ee-core/jobs/baseJobClass');
const { childMessage } = require('ee-core/message');

class EmitJob extends BaseJobClass {
  async handle(params) {
    childMessage.sendToMain(params.name, params.data);
    return null;
  }
}

module.exports = EmitJob;
