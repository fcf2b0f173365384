'use strict';
// Descriptors waiting for their run (lib/handles.js, docs/protocol.md §9): kept in order, bounded,
// closed when their run is refused, cancelled or takes another number of them.

const { test } = require('node:test');
const assert = require('node:assert');
const { PendingHandles, MAX_PENDING } = require('../lib/handles');

function fake() {
  return {
    allowHalfOpen: false,
    destroyed: false,
    destroy() {
      this.destroyed = true;
    },
  };
}

const fd = (id, index, of = 2) => ({ type: 'fd', id, index, of, kind: 'tcp' });

test('handles are kept in order for their run and made half-open', () => {
  const p = new PendingHandles();
  const [a, b] = [fake(), fake()];
  p.offer(fd('r1', 0), a);
  p.offer(fd('r1', 1), b);
  assert.deepStrictEqual(p.take('r1', 2), [a, b]);
  assert.ok(a.allowHalfOpen && b.allowHalfOpen);
  assert.strictEqual(p.count, 0);
});

test('a wrong count closes them and throws FdMissing', () => {
  const p = new PendingHandles();
  const a = fake();
  p.offer(fd('r1', 0), a);
  assert.throws(() => p.take('r1', 2), { name: 'FdMissing' });
  assert.ok(a.destroyed);
});

test('out of order, over the bound, or cancelled: closed', () => {
  const p = new PendingHandles();
  const late = fake();
  p.offer(fd('r1', 1), late);
  assert.ok(late.destroyed, 'index 1 before index 0');
  const kept = [];
  for (let i = 0; i < MAX_PENDING; i++) {
    const h = fake();
    kept.push(h);
    p.offer(fd(`r${i}`, 0, 1), h);
  }
  const over = fake();
  p.offer(fd('over', 0, 1), over);
  assert.ok(over.destroyed, 'past MAX_PENDING');
  p.forget('r0');
  assert.ok(kept[0].destroyed);
  assert.strictEqual(p.count, MAX_PENDING - 1);
});
