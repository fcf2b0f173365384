'use strict';
// An ee-core style service (test-fixtures/app/service/example.js, electron-egg's demo) working
// unchanged but for its require.
const assert = require('node:assert/strict');
const { test } = require('node:test');
const path = require('node:path');
const { APP, alive, until } = require('./helpers');

const ExampleService = require(path.join(APP, 'service', 'example.js'));

function fakeEvent() {
  const replies = [];
  const waiters = [];
  return {
    replies,
    reply(channel, data) {
      replies.push({ channel, data });
      for (const w of waiters.splice(0)) w();
    },
    async wait(pred) {
      for (;;) {
        const hit = replies.filter(pred);
        if (hit.length) return hit;
        await new Promise((r) => waiters.push(r));
      }
    },
  };
}

test('the demo service: a timer ChildJob ticks and is closed; a pool is created and runs the timer', async () => {
  const svc = new ExampleService();
  const event = fakeEvent();
  const res = svc.doJob('j1', 'create', event);
  assert.ok(Number.isInteger(res.pid) && alive(res.pid));
  const [tick] = await event.wait((r) => r.data && r.data.jobId === 'j1' && r.data.number === 0);
  assert.equal(tick.channel, 'controller/example/timerJobProgress');
  assert.deepEqual(tick.data, { jobId: 'j1', number: 0, countdown: 10 });
  assert.deepEqual(svc.monitorJob().jobs, [String(res.pid)]);
  svc.doJob('j1', 'close', event);
  await until(() => !alive(res.pid), 20000, 'the timer process gone');
  await until(() => svc.monitorJob().jobs.length === 0, 20000, 'getPids() empty');

  svc.doCreatePool(2, event);
  const [notice] = await event.wait((r) => r.channel === 'controller/example/createPoolNotice');
  assert.equal(notice.data.length, 2);
  svc.doJobByPool('p1', 'run', event);
  const [started] = await event.wait((r) => r.channel === 'controller/example/poolTaskStarted');
  assert.ok(notice.data.includes(String(started.data.pid)));
  await event.wait((r) => r.data && r.data.jobId === 'p1' && r.data.number === 1);
  assert.deepEqual(svc.monitorJob().pool.sort(), notice.data.sort());
  await svc.myJobPool.killAll();
  await until(() => notice.data.every((p) => !alive(Number(p))), 20000, 'pool children gone');
});
