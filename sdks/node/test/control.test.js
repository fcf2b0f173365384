'use strict';
// Flow control, heap in pong, shutdown hooks (onShutdown / softKill(done)) and the hard-kill
// notice (onHardKill), through a real runner process.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { WorkerProcess, tempTree } = require('./harness');

const JOBS = {
  'hooks.js': `
    const offload = require('offload-worker');
    module.exports = async function hooks(p) {
      if (p.soft === 'done-later') {
        offload.softKill((done) => setTimeout(() => { offload.emitWorkerEvent('soft-done', null); done(); }, 200));
      } else if (p.soft === 'never') {
        offload.onShutdown(() => new Promise(() => {}));
      } else if (p.soft === 'throws') {
        offload.onShutdown(() => { throw new Error('hook boom'); });
      }
      if (p.hard) offload.onHardKill(() => offload.emitWorkerEvent('hard', process.pid));
      return null;
    };`,
  'flow.js': `
    const offload = require('offload-worker');
    module.exports = async (p) => { if (p.busy) offload.busy(); else offload.ready(); return p.busy; };`,
  'sleep.js': `
    module.exports = (p, ctx) => new Promise((resolve, reject) => {
      const t = setTimeout(() => resolve('slept'), p.ms);
      ctx.signal.addEventListener('abort', () => { clearTimeout(t); reject(ctx.signal.reason); });
    });`,
};

function start() {
  return new WorkerProcess({ jobsDir: tempTree(JOBS) });
}

test('busy() and ready() send the flow-control frames in order with the answers', async () => {
  const w = start();
  await w.ready();
  w.send({ type: 'run', id: 'a', job: 'flow', params: { busy: true } });
  assert.deepEqual(await w.next(), { type: 'busy' });
  assert.deepEqual(await w.next(), { type: 'result', id: 'a', value: true });
  w.send({ type: 'run', id: 'b', job: 'flow', params: { busy: false } });
  assert.deepEqual(await w.next(), { type: 'ready' });
  assert.deepEqual(await w.next(), { type: 'result', id: 'b', value: false });
  w.kill();
});

test('a softKill(done) hook delays the ack until done; running jobs finish meanwhile', async () => {
  const w = start();
  await w.ready();
  assert.equal((await w.run('hooks', { soft: 'done-later' })).type, 'result');
  w.send({ type: 'run', id: 's', job: 'sleep', params: { ms: 50 } });
  w.send({ type: 'shutdown', grace_ms: 5000 });
  const frames = [await w.next(), await w.next(), await w.next()];
  assert.deepEqual(
    frames.map((f) => f.type + ':' + (f.id || f.name)).sort(),
    ['ack:shutdown', 'event:soft-done', 'result:s'].sort(),
  );
  assert.equal(frames[2].type, 'ack', 'the ack comes last: ' + JSON.stringify(frames));
  assert.equal((await w.exited()).code, 0);
});

test('a shutdown hook that never settles is abandoned after the grace; one that throws is logged', async () => {
  for (const soft of ['never', 'throws']) {
    const w = start();
    await w.ready();
    await w.run('hooks', { soft });
    w.send({ type: 'shutdown', grace_ms: 100 });
    assert.deepEqual(await w.next(), { type: 'ack', id: 'shutdown' });
    assert.equal((await w.exited()).code, 0);
    assert.match(w.stderr, soft === 'never' ? /did not finish within the grace/ : /hook boom/);
  }
});

test('the kill notice aborts the jobs, runs the hard-kill hooks and exits', async () => {
  const w = start();
  await w.ready();
  await w.run('hooks', { hard: true });
  w.send({ type: 'run', id: 'long', job: 'sleep', params: { ms: 60000 } });
  w.send({ type: 'kill', grace_ms: 5000 });
  const ev = await w.take({ type: 'event', name: 'hard' });
  assert.equal(ev.data, w.child.pid);
  assert.equal((await w.exited()).code, 0);
});

test('pong carries heapUsed and heapTotal', async () => {
  const w = start();
  await w.ready();
  w.send({ type: 'ping', id: 'p1' });
  const pong = await w.next();
  assert.equal(pong.id, 'p1');
  assert.ok(Number.isInteger(pong.heap_used) && pong.heap_used > 0);
  assert.ok(pong.heap_total >= pong.heap_used);
  w.kill();
});
