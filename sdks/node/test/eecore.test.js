'use strict';
// ee-core job files run unchanged: with ee-core absent (it is not installed here) the runner
// provides ee-core/message, ee-core/ps, ee-core/log and ee-core/jobs/baseJobClass; with an
// ee-core package installed next to the jobs, that package is used instead.

const assert = require('node:assert/strict');
const { describe, test, after } = require('node:test');
const fs = require('node:fs');
const path = require('node:path');
const { WorkerProcess, tempTree } = require('./harness');

// The shape of electron-egg's example TimerJob (ee-core 4), with shorter times.
const TIMER = `
'use strict';
const { logger } = require('ee-core/log');
const { isChildJob, exit } = require('ee-core/ps');
const { childMessage } = require('ee-core/message');

class TimerJob {
  constructor() {
    this.timer = undefined;
    this.number = 0;
  }
  async handle(params) {
    logger.info('[child-process] TimerJob params: ', params);
    this.number = 0;
    this.doTimer(params.jobId);
  }
  async pause(jobId) {
    logger.info('[child-process] Pause timerJob, jobId: ', jobId);
    clearInterval(this.timer);
    return 'paused ' + this.number;
  }
  async doTimer(jobId) {
    const eventName = 'job-timer-progress-' + jobId;
    this.timer = setInterval(() => {
      childMessage.send(eventName, { jobId, number: this.number, end: false });
      this.number++;
    }, 20);
  }
}
module.exports = TimerJob;
`;

// The same job written so that handle() lasts as long as the timer: the job is running while it
// ticks, so ee-core's callFunc (a `call`) reaches that instance.
const AWAITING_TIMER = `
'use strict';
const { logger } = require('ee-core/log');
const { childMessage } = require('ee-core/message');

class TimerJob {
  constructor() {
    this.timer = undefined;
    this.number = 0;
  }
  async handle(params) {
    logger.info('[child-process] TimerJob params: ', params);
    const eventName = 'job-timer-progress-' + params.jobId;
    await new Promise((resolve) => {
      this.stop = resolve;
      this.timer = setInterval(() => {
        childMessage.send(eventName, { jobId: params.jobId, number: this.number, end: false });
        this.number++;
      }, 20);
    });
    return this.number;
  }
  async pause(jobId) {
    logger.info('[child-process] Pause timerJob, jobId: ', jobId);
    clearInterval(this.timer);
    if (this.stop) this.stop();
    return 'paused ' + this.number;
  }
}
module.exports = TimerJob;
`;

const DURING = `
const BaseJobClass = require('ee-core/jobs/baseJobClass');
const { childMessage } = require('ee-core/message');
const Ps = require('ee-core/ps');
const Log = require('ee-core/log');

class During extends BaseJobClass {
  constructor(params) { super(params); this.params = params; }
  async handle(params) {
    childMessage.send('a', 1);
    childMessage.send('b', 2, 'job');
    childMessage.send('c', 3, 'all');
    childMessage.send('d', 4, 'something-else');
    childMessage.send('e', 5, 'forkProcess');
    await new Promise((r) => setTimeout(r, 5));
    childMessage.sendToMain('f', { after: 'await' });
    childMessage.sendErrorToTerminal(new Error('shown'));
    Log.logger.info('hello %s', 'world');
    Log.logger.error('bad %d', 7);
    Log.coreLogger.warn('core');
    Log.info('v2 style');
    return {
      base: this instanceof BaseJobClass,
      isChildJob: Ps.isChildJob(),
      isChildPoolJob: Ps.isChildPoolJob(),
      processType: Ps.processType(),
      isForkedChild: Ps.isForkedChild(),
      isMain: Ps.isMain(),
      isRenderer: Ps.isRenderer(),
      dirs: [Ps.getLogDir(), Ps.getDataDir(), Ps.getBaseDir(), Ps.getRootDir(), Ps.getUserHomeAppDir(),
             Ps.getExtraResourcesDir(), Ps.getPublicDir(), Ps.getStorageDir()].every((d) => typeof d === 'string' && d.length > 0),
      ports: [Ps.getSocketPort(), Ps.getHttpPort()],
      message: Ps.makeMessage({ event: 'x' }),
      arg: Ps.getArgumentByName('nothing') === undefined,
      ctor: this.params,
    };
  }
}
module.exports = During;
`;

const CHILDJOB_EXIT = `
const { isChildJob, exit } = require('ee-core/ps');
const { childMessage } = require('ee-core/message');
module.exports = class {
  handle(params) {
    setTimeout(() => {
      childMessage.send('done', params);
      if (isChildJob()) exit();
    }, 10);
    return 'started';
  }
};
`;

const ESM_JOB = `
import { logger } from 'ee-core/log';
import { isChildJob } from 'ee-core/ps';
import { childMessage } from 'ee-core/message';
import BaseJobClass from 'ee-core/jobs/baseJobClass';
import { context } from 'offload-worker';

export default class EsmJob extends BaseJobClass {
  async handle(params) {
    childMessage.sendToMain('esm-event', params);
    logger.info('from esm');
    return { isChildJob: isChildJob(), id: context().id };
  }
}
`;

const WHICH = `
const { childMessage } = require('ee-core/message');
const ps = require('ee-core/ps');
const log = require('ee-core/log');
const Base = require('ee-core/jobs/baseJobClass');
module.exports = () => [childMessage.origin, ps.origin, log.origin, Base.origin];
`;
const WHICH_ESM = `
import { childMessage } from 'ee-core/message';
import * as ps from 'ee-core/ps';
import * as log from 'ee-core/log';
import Base from 'ee-core/jobs/baseJobClass';
export default () => [childMessage.origin, ps.origin, log.origin, Base.origin];
`;

const FAKE_EE_CORE = {
  'node_modules/ee-core/package.json': JSON.stringify({
    name: 'ee-core',
    version: '4.0.0-fake',
    exports: {
      './message': './message.js',
      './ps': './ps.js',
      './log': './log.js',
      './jobs/baseJobClass': './jobs/baseJobClass.js',
    },
  }),
  'node_modules/ee-core/message.js': `exports.childMessage = { origin: 'installed' };`,
  'node_modules/ee-core/ps.js': `exports.origin = 'installed';`,
  'node_modules/ee-core/log.js': `exports.origin = 'installed';`,
  'node_modules/ee-core/jobs/baseJobClass.js': `module.exports = class Base {}; module.exports.origin = 'installed';`,
};

// Held ee-core runs (lib/lifecycle.js): exit(3) later, and a timer that never ends by itself.
const EXIT_LATER = `
const { exit } = require('ee-core/ps');
module.exports = class {
  handle(params) {
    setTimeout(() => exit(params.code), 10);
  }
};
`;
const FOREVER = `
const { childMessage } = require('ee-core/message');
module.exports = class {
  async handle() {
    setInterval(() => childMessage.send('tick', 1), 20);
  }
};
`;

const bare = tempTree({
  'jobs/exit-later.js': EXIT_LATER,
  'jobs/forever.js': FOREVER,
  'jobs/timer.js': TIMER,
  'jobs/awaiting-timer.js': AWAITING_TIMER,
  'jobs/during.js': DURING,
  'jobs/childjob.js': CHILDJOB_EXIT,
  'jobs/esmjob.mjs': ESM_JOB,
  'jobs/which.js': WHICH,
  'jobs/which.mjs': WHICH_ESM,
});
const installed = tempTree({ ...FAKE_EE_CORE, 'jobs/which.js': WHICH, 'jobs/which.mjs': WHICH_ESM });
after(() => {
  fs.rmSync(bare, { recursive: true, force: true });
  fs.rmSync(installed, { recursive: true, force: true });
});

const workers = [];
async function start(root, opts = {}) {
  const w = new WorkerProcess({ jobsDir: path.join(root, 'jobs'), ...opts });
  workers.push(w);
  await w.ready();
  return w;
}
after(() => workers.forEach((w) => w.kill()));

describe('ee-core compatibility', { concurrency: 4 }, () => {
  test('ee-core is really not installed here (the shims are what is tested)', () => {
    assert.throws(() => require.resolve('ee-core/message', { paths: [bare] }), { code: 'MODULE_NOT_FOUND' });
  });

  test('childMessage events carry the receiver mapping and, during the job, its id', async () => {
    const w = await start(bare);
    w.send({ mid: 'm1', cmd: 'run', jobPath: path.join(bare, 'jobs', 'during.js'), jobParams: [{ p: 1 }, 'second'] });
    const r = await w.answer('m1');
    assert.deepEqual(r.seen, [
      { type: 'event', name: 'a', data: 1, receiver: 'task', id: 'm1' },
      { type: 'event', name: 'b', data: 2, receiver: 'job', id: 'm1' },
      { type: 'event', name: 'c', data: 3, receiver: 'all', id: 'm1' },
      { type: 'event', name: 'd', data: 4, receiver: 'all', id: 'm1' },
      { type: 'event', name: 'e', data: 5, receiver: 'task', id: 'm1' },
      { type: 'event', name: 'f', data: { after: 'await' }, receiver: 'job', id: 'm1' },
      { type: 'event', name: 'ee#showException', data: 'Error: shown', receiver: 'all', id: 'm1' },
    ]);
    assert.deepEqual(r.value, {
      base: true,
      isChildJob: true,
      isChildPoolJob: false,
      processType: 'child',
      isForkedChild: true,
      isMain: false,
      isRenderer: false,
      dirs: true,
      ports: [0, 0],
      message: { channel: '', event: 'x', data: {} },
      arg: true,
      ctor: { p: 1 },
    });
    const pid = w.child.pid;
    await w.output('stdout', new RegExp(`INFO ${pid} \\[during m1\\] hello world\\n`));
    await w.output('stdout', /INFO \d+ \[during m1\] v2 style\n/);
    await w.output('stderr', new RegExp(`ERROR ${pid} \\[during m1\\] bad 7\\n`));
    await w.output('stderr', /WARN \d+ \[ee-core\] \[during m1\] core\n/);
  });

  test('OFFLOAD_POOL=1 makes isChildPoolJob() true', async () => {
    const w = await start(bare, { env: { OFFLOAD_POOL: '1' } });
    const r = await w.run('during', null);
    assert.equal(r.value.isChildJob, false);
    assert.equal(r.value.isChildPoolJob, true);
  });

  test('a timer job: its events carry the job id; call pause() reaches the running instance', async () => {
    const w = await start(bare);
    const file = path.join(bare, 'jobs', 'awaiting-timer.js');
    w.send({ mid: 't-run', cmd: 'run', jobPath: file, jobParams: [{ jobId: 'T' }] });
    const tick = await w.take({ type: 'event', name: 'job-timer-progress-T' });
    assert.deepEqual(tick, {
      type: 'event',
      name: 'job-timer-progress-T',
      data: { jobId: 'T', number: 0, end: false },
      receiver: 'task',
      id: 't-run',
    });
    await w.take({ type: 'event', data: { number: 2 } });
    w.send({ mid: 't-pause', cmd: 'run', jobPath: file, jobFunc: 'pause', jobFuncParams: ['T'] });
    const paused = await w.answer('t-pause');
    assert.match(paused.value, /^paused \d+$/);
    const stopped = Number(paused.value.split(' ')[1]);
    assert.equal((await w.answer('t-run')).value, stopped, 'pause ended the running job');
    // No tick may come after pause with a number >= the one pause saw.
    await new Promise((r) => setTimeout(r, 100));
    w.send({ type: 'ping', id: 'sync' });
    await w.take({ type: 'pong', id: 'sync' });
    assert.deepEqual(w.frames.filter((f) => f.type === 'event' && f.data.number >= stopped), []);
    await w.output('stdout', /\[child-process\] TimerJob params:  \{ jobId: 'T' \}/);
    await w.output('stdout', /Pause timerJob, jobId:  T/);
  });

  test("ee-core's own TimerJob in a ChildJob: handle() returns at once, the run is held (lib/lifecycle.js): ticks carry its id, pause() reaches it, the drained loop answers it", async () => {
    const w = await start(bare);
    const file = path.join(bare, 'jobs', 'timer.js');
    w.send({ mid: 'o-run', cmd: 'run', jobPath: file, jobParams: [{ jobId: 'O' }] });
    const tick = await w.take({ type: 'event', name: 'job-timer-progress-O' });
    assert.deepEqual(tick, { type: 'event', name: 'job-timer-progress-O', data: { jobId: 'O', number: 0, end: false }, receiver: 'task', id: 'o-run' });
    await w.take({ type: 'event', name: 'job-timer-progress-O', data: { number: 1 } });
    w.send({ mid: 'o-pause', cmd: 'run', jobPath: file, jobFunc: 'pause', jobFuncParams: ['O'] });
    const paused = await w.answer('o-pause');
    assert.match(paused.value, /^paused [1-9]\d*$/, 'the call reached the running instance');
    // The interval is cleared: nothing keeps the job alive, so it is answered and the process ends.
    assert.equal((await w.answer('o-run')).value, null);
    assert.equal((await w.exited()).code, 0);
  });

  test('a held run that calls exit(3): an Exited error, exit status 3', async () => {
    const w = await start(bare);
    const r = await w.run('exit-later', { code: 3 });
    assert.equal(r.type, 'error');
    assert.equal(r.error.name, 'Exited');
    assert.equal((await w.exited()).code, 3);
  });

  test('a held run is answered Cancelled on cancel (the supervisor then kills the group)', async () => {
    const w = await start(bare);
    w.send({ type: 'run', id: 'f1', job: 'forever', params: null });
    await w.take({ type: 'event', name: 'tick' });
    w.send({ type: 'cancel', id: 'f1' });
    const r = await w.answer('f1');
    assert.equal(r.type, 'error');
    assert.equal(r.error.name, 'Cancelled');
  });

  test("ee-core's own TimerJob in a pool worker (OFFLOAD_POOL=1): answered when handle() returns, the worker stays", async () => {
    const w = await start(bare, { env: { OFFLOAD_POOL: '1' } });
    const file = path.join(bare, 'jobs', 'timer.js');
    w.send({ mid: 'p-run', cmd: 'run', jobPath: file, jobParams: [{ jobId: 'P' }] });
    assert.equal((await w.answer('p-run')).value, null);
    const tick = await w.take({ type: 'event', name: 'job-timer-progress-P' });
    assert.deepEqual(tick, { type: 'event', name: 'job-timer-progress-P', data: { jobId: 'P', number: 0, end: false }, receiver: 'task' });
    w.send({ mid: 'p-pause', cmd: 'run', jobPath: file, jobFunc: 'pause', jobFuncParams: ['P'] });
    assert.equal((await w.answer('p-pause')).value, 'paused 0', 'no run in progress: a fresh instance');
    await w.take({ type: 'event', name: 'job-timer-progress-P', data: { number: 2 } });
  });

  test('a ChildJob that calls exit() when done: result, its last event, exit 0', async () => {
    const w = await start(bare);
    w.send({ mid: 'x', cmd: 'run', jobPath: path.join(bare, 'jobs', 'childjob.js'), jobParams: [{ n: 1 }] });
    assert.deepEqual(await w.next(), { type: 'result', id: 'x', value: 'started' });
    assert.deepEqual(await w.next(), { type: 'event', name: 'done', data: { n: 1 }, receiver: 'task' });
    assert.equal((await w.exited()).code, 0);
  });

  test('ES job files import the compatible modules (module.register resolve hook)', async () => {
    const w = await start(bare);
    const r = await w.run('esmjob', { e: 1 }, { id: 'esm1' });
    assert.deepEqual(r.value, { isChildJob: true, id: 'esm1' });
    assert.deepEqual(r.seen, [{ type: 'event', name: 'esm-event', data: { e: 1 }, receiver: 'job', id: 'esm1' }]);
    await w.output('stdout', /INFO \d+ \[esmjob esm1\] from esm\n/);
  });

  test('without ee-core installed, the shims answer (CommonJS and ESM)', async () => {
    const w = await start(bare);
    assert.deepEqual((await w.run('which.js', null)).value, [null, null, null, null]);
    assert.deepEqual((await w.run('which.mjs', null)).value, [null, null, null, null]);
  });

  test('an installed ee-core wins over the shims (CommonJS and ESM)', async () => {
    const w = await start(installed);
    const all = ['installed', 'installed', 'installed', 'installed'];
    assert.deepEqual((await w.run('which.js', null)).value, all);
    assert.deepEqual((await w.run('which.mjs', null)).value, all);
  });
});
