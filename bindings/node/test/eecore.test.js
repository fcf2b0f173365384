'use strict';
// ee-core's jobs API (require('<repo>/bindings/node/ee-core')) against job files written as
// ee-core's documentation writes them (test-fixtures/app/jobs), paths in ee-core's style.
const assert = require('node:assert/strict');
const { describe, test, after } = require('node:test');
const { ChildJob, ChildPoolJob, LoadBalancer, AlgorithmType } = require('../ee-core');
const native = require('../lib/native');
const { APP, alive, until, collect } = require('./helpers');

describe('ee-core ChildJob', () => {
  const job = new ChildJob({ baseDir: APP });
  after(() => job.killAll());

  test("exec('./jobs/example/timer') returns a JobProcess at once; every tick arrives; it ends on exit()", async () => {
    const jobId = 't1';
    const proc = job.exec('./jobs/example/timer', { jobId, countdown: 2 });
    assert.ok(Number.isInteger(proc.pid) && alive(proc.pid));
    assert.equal(proc.child.pid, proc.pid);
    assert.ok(job.getPids().includes(String(proc.pid)));
    assert.equal(job.getChildByPid(proc.pid), proc);
    assert.equal(job.jobs[proc.pid], proc);
    const ticks = [];
    proc.emitter.on('job-timer-progress-' + jobId, (data) => ticks.push(data));
    const outcome = await new Promise((resolve) => proc.emitter.once('exit', resolve));
    assert.deepEqual(ticks, [
      { jobId, number: 0, countdown: 2 },
      { jobId, number: 1, countdown: 1 },
    ]);
    assert.deepEqual(outcome, { outcome: 'succeeded', value: null }, 'answered by exit()');
    assert.ok(!alive(proc.pid));
    assert.equal(job.getChildByPid(proc.pid), null);
    assert.ok(!job.getPids().includes(String(proc.pid)));
  });

  test('execPromise resolves the JobProcess; sendToMain reaches the ChildJob, send() the process emitter', async () => {
    const toMain = new Promise((resolve) => job.once('to-main-e1', resolve));
    const task = await job.execPromise('./jobs/tomain', { jobId: 'e1' });
    const toTask = new Promise((resolve) => task.emitter.once('to-task-e1', resolve));
    assert.deepEqual(await toMain, { jobId: 'e1', child: true, pool: false });
    assert.deepEqual(await toTask, { jobId: 'e1' });
    await new Promise((resolve) => task.emitter.once('exit', resolve));
  });

  test('callFunc reaches the running timer instance (pause): with its interval cleared the job ends by itself', async () => {
    const proc = job.exec('./jobs/example/timer', { jobId: 'c1', countdown: 30 });
    await collect(proc.emitter, 'job-timer-progress-c1', 1);
    const exited = new Promise((resolve) => proc.emitter.once('exit', resolve));
    const paused = await proc.callFunc('./jobs/example/timer', 'pause', 'c1');
    assert.equal(paused.paused, true);
    assert.ok(paused.number >= 1);
    assert.deepEqual(await exited, { outcome: 'succeeded', value: null });
  });

  test('kill(timeout) stops a ticking timer job', async () => {
    const proc = job.exec('./jobs/example/timer', { jobId: 'k1', countdown: 30 });
    await collect(proc.emitter, 'job-timer-progress-k1', 1);
    const outcome = await proc.kill(500);
    assert.equal(outcome.outcome, 'killed');
    assert.ok(!alive(proc.pid));
  });

  test('kill(timeout) escalates to SIGKILL when the job ignores SIGINT (ee-core never did)', async () => {
    const proc = job.exec('./jobs/stubborn', {});
    await until(() => alive(proc.pid), 10000, 'started');
    await new Promise((r) => setTimeout(r, 300)); // let handle() install its SIGINT handler (not a threshold: either way it dies)
    const outcome = await proc.kill(200);
    assert.equal(outcome.outcome, 'killed');
    assert.ok(!alive(proc.pid));
  });

  test('createProcess + dispatch runs a job in a process started empty', async () => {
    const proc = job.createProcess();
    assert.ok(Number.isInteger(proc.pid));
    const toTask = new Promise((resolve) => proc.emitter.once('to-task-d1', resolve));
    proc.dispatch('run', './jobs/tomain', { jobId: 'd1' });
    assert.deepEqual(await toTask, { jobId: 'd1' });
    await new Promise((resolve) => proc.emitter.once('exit', resolve));
  });

  test('bad input throws a typed error naming the job; a crash before answering emits error', async () => {
    assert.throws(() => job.exec('../../outside', {}), (e) => e.code === 'InvalidJob' && e.message.includes('../../outside'));
    assert.throws(() => job.exec('/etc/passwd', {}), (e) => e.code === 'InvalidJob');
    assert.throws(() => job.exec('./jobs/missing', {}), (e) => e.code === 'JobNotFound' && e.message.includes('./jobs/missing'));
    assert.throws(() => job.exec('./jobs/tomain', { n: 1n }), (e) => e.code === 'InvalidArgument' && e.message.includes('jobs/tomain'));
    await assert.rejects(job.execPromise('./jobs/missing', {}), (e) => e.code === 'JobNotFound');
    const proc = job.exec('./jobs/crash-early', {});
    const err = await new Promise((resolve) => proc.emitter.once('error', resolve));
    assert.equal(err.code, 'Exited');
    assert.match(err.message, /jobs\/crash-early/);
  });
});

describe('ee-core ChildPoolJob', () => {
  const pool = new ChildPoolJob({ baseDir: APP, max: 3 });
  after(() => pool.killAll());

  test('create(n) resolves to pid strings; max is enforced', async () => {
    const pids = await pool.create(2);
    assert.equal(pids.length, 2);
    assert.ok(pids.every((p) => typeof p === 'string' && alive(Number(p))));
    const more = await pool.create(5);
    assert.equal(more.length, 3, 'max 3');
    assert.deepEqual(pool.getPids().sort(), more.sort());
  });

  test('a max above MAX_WORKERS is refused, naming the limit', () => {
    assert.throws(() => new ChildPoolJob({ baseDir: APP, max: 1e9 }), (e) => e.code === 'InvalidArgument' && /1024/.test(e.message));
  });

  test('runPromise resolves the task with .pid and .emitter; the timer ticks on it; the worker stays', async () => {
    const jobId = 'p1';
    const task = await pool.runPromise('./jobs/example/timer', { jobId, countdown: 30 });
    assert.ok(pool.getPids().includes(String(task.pid)));
    assert.equal(pool.getChildByPid(task.pid), task);
    const ticks = await collect(task.emitter, 'job-timer-progress-' + jobId, 2);
    assert.deepEqual(ticks.map((t) => t.number), [0, 1]);
    assert.ok(alive(task.pid));
  });

  test("a pool child's dispatch runs the job on that child; a gone child's reports NoSuchWorker", async () => {
    await pool.create(3);
    const pids = pool.getPids().map(Number);
    assert.ok(pids.length >= 2, `${pids}`);
    for (const pid of pids) {
      const child = pool.getChildByPid(pid);
      for (let i = 0; i < 3; i++) {
        const tag = `${pid}-${i}`;
        const got = new Promise((resolve) => pool.once(`whoami-${tag}`, resolve));
        child.dispatch('run', './jobs/whoami', { tag });
        assert.equal((await got).pid, pid, 'ran on the child it was dispatched to');
      }
    }
    // Every argument reaches the job, as ee-core's jobParams: new Sum(2, 3), handle(2, 3).
    const summed = new Promise((resolve) => pool.once('sum-2-3', resolve));
    pool.getChildByPid(pids[1]).dispatch('run', './jobs/sum', 2, 3);
    assert.deepEqual(await summed, { sum: 5, made: [2, 3], pid: pids[1] });
    const child = pool.getChildByPid(pids[0]);
    const exited = new Promise((resolve) => child.emitter.once('exit', resolve));
    await child.kill(0);
    await exited;
    const failed = new Promise((resolve) => child.emitter.once('error', resolve));
    child.dispatch('run', './jobs/whoami', { tag: 'gone' });
    const e = await failed;
    assert.equal(e.code, 'NoSuchWorker', e.message);
  });

  test('run; sendToMain reaches the pool; isChildPoolJob() in a pool', async () => {
    const got = new Promise((resolve) => pool.once('to-main-r1', resolve));
    const task = await pool.run('./jobs/tomain', { jobId: 'r1' });
    assert.ok(Number.isInteger(task.pid));
    assert.deepEqual(await got, { jobId: 'r1', child: false, pool: true });
  });

  test('getBoundChild: the same child for the same id; boundMap records it', async () => {
    const a = await pool.getBoundChild('session-1');
    const b = await pool.getBoundChild('session-1');
    assert.equal(a.pid, b.pid);
    assert.equal(pool.boundMap.get('session-1'), a.pid);
    const c = await pool.getChild();
    assert.ok(pool.getPids().includes(String(c.pid)));
    // A bound id is bounded (1 KiB, the native MAX_KEY_BYTES): refused, naming the limit.
    await assert.rejects(pool.getBoundChild('s'.repeat(1025)), (e) => e.code === 'InvalidArgument' && /MAX_KEY_BYTES/.test(e.message));
    assert.equal(typeof native.MAX_BINDINGS, 'number');
  });

  test('boundMap keeps at most MAX_BINDINGS ids, the most recently bound', async () => {
    const n = native.MAX_BINDINGS + 10;
    const first = await pool.getBoundChild('first');
    for (let i = 0; i < n; i += 1000) {
      const ids = [];
      for (let j = i; j < Math.min(n, i + 1000); j++) ids.push(`id-${j}`);
      await Promise.all(ids.map((id) => pool.getBoundChild(id)));
    }
    assert.equal(pool.boundMap.size, native.MAX_BINDINGS);
    assert.equal(pool.boundMap.has('first'), false);
    assert.equal(pool.boundMap.get(`id-${n - 1}`) !== undefined, true);
    // A forgotten id is bound again on its next call.
    const again = await pool.getBoundChild('first');
    assert.ok(pool.getPids().includes(String(again.pid)), `${first.pid} then ${again.pid}`);
    assert.equal(pool.boundMap.get('first'), again.pid);
  });

  test('bad paths reject with typed errors naming the job', async () => {
    await assert.rejects(pool.run('../../x', {}), (e) => e.code === 'InvalidJob');
    await assert.rejects(pool.runPromise('./jobs/nope', {}), (e) => e.code === 'JobNotFound' && e.message.includes('./jobs/nope'));
  });

  test('killAll ends every child; the pool starts new ones for the next run, as in ee-core', async () => {
    const pids = pool.getPids().map(Number);
    await pool.killAll();
    assert.deepEqual(pool.getPids(), []);
    await until(() => pids.every((p) => !alive(p)), 20000, 'children gone');
    // A run after killAll used to be refused with ShuttingDown forever.
    const task = await pool.runPromise('./jobs/example/timer', { jobId: 'again', countdown: 1 });
    assert.ok(!pids.includes(task.pid), 'a new child');
    assert.deepEqual(pool.getPids(), [String(task.pid)]);
    const more = await pool.create(2); // every pid: the new child and two more (max 3)
    assert.equal(more.length, 3);
    assert.ok(more.includes(String(task.pid)));
    await pool.killAll();
    await until(() => more.every((p) => !alive(Number(p))), 20000, 'the new children gone');
  });
});

describe('ee-core LoadBalancer', () => {
  test("ee-core's constructor, AlgorithmType, pickOne/pickMulti, add/del/wipe/setTargets", () => {
    const lb = new LoadBalancer({ targets: [{ id: 1, weight: 1 }, { id: 2, weight: 2 }], algorithm: AlgorithmType.polling });
    assert.equal(LoadBalancer.Algorithm.weightsRandom, 'weightsRandom');
    assert.deepEqual([lb.pickOne().id, lb.pickOne().id, lb.pickOne().id], [1, 2, 1]);
    lb.add({ id: 3, weight: 1 });
    assert.equal(lb.pickMulti(3).length, 3);
    lb.del({ id: 3 });
    assert.equal(lb.targets.length, 2);
    lb.wipe();
    assert.equal(lb.pickOne(), null);
    lb.setTargets([{ id: 'x' }]);
    assert.equal(lb.pickOne().id, 'x');
  });
});
