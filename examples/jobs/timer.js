// An ee-core job file, unchanged: it runs with or without the ee-core package installed.
const { childMessage } = require('ee-core/message');
const Ps = require('ee-core/ps');
const Log = require('ee-core/log');

class TimerJob {
  constructor(params) {
    this.params = params || {};
    this.paused = false;
  }

  async handle() {
    const { jobId = 'timer', ticks = 3 } = this.params;
    const eventName = 'job-timer-progress-' + jobId;
    Log.info(`[timer] ${jobId} starts, isChildJob=${Ps.isChildJob()}`);
    for (let number = 1; number <= ticks; number++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      childMessage.sendToMain(eventName, { jobId, number, end: number === ticks });
    }
    return { jobId, ticks };
  }

  pause() {
    this.paused = true;
    return 'paused';
  }
}

module.exports = TimerJob;
