// ee-core's demo timer job (electron-egg, electron/jobs/example/timer.js), unchanged but for
// `countdown`, which may come from the params (ee-core's demo always counts 10 s).
const { logger } = require('ee-core/log');
const { isChildJob, exit } = require('ee-core/ps');
const { childMessage } = require('ee-core/message');
const { welcome } = require('./hello');

/**
 * example - TimerJob
 * @class
 */
class TimerJob {
  constructor(params) {
    this.params = params;
    this.timer = undefined;
    this.timeoutTimer = undefined;
    this.number = 0;
    this.countdown = 10;
  }

  /**
   * handle() is required and called automatically
   */
  async handle() {
    logger.info('[child-process] TimerJob params: ', this.params);
    const { jobId } = this.params;

    this.number = 0;
    this.countdown = this.params.countdown || 10;
    this.doTimer(jobId);
  }

  async doTimer(jobId) {
    const eventName = 'job-timer-progress-' + jobId;
    this.timer = setInterval(() => {
      welcome();
      childMessage.send(eventName, { jobId, number: this.number, countdown: this.countdown });
      this.number++;
      this.countdown--;
    }, 1000);

    this.timeoutTimer = setTimeout(() => {
      clearInterval(this.timer);
      if (isChildJob()) {
        exit();
      }
    }, this.countdown * 1000 + 500);
  }

  /**
   * pause
   */
  async pause(jobId) {
    logger.info('[child-process] Pause timerJob, jobId: ', jobId);
    clearInterval(this.timer);
    clearTimeout(this.timeoutTimer);
    return { jobId, paused: true, number: this.number };
  }

  /**
   * resume
   */
  async resume(jobId, pid) {
    logger.info('[child-process] Resume timerJob, jobId: ', jobId, ', pid: ', pid);
    this.doTimer(jobId);
    return { jobId, resumed: true };
  }
}
TimerJob.toString = () => '[class TimerJob]';

module.exports = TimerJob;
