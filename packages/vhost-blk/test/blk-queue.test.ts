import t from 'tap';
import { io, type IoChannel } from '@blockwork/core';
import { BlkQueue, type BlkQueueContext } from '../src/blk-queue';
import { BlkStatus, BlkType } from '../src/blk-request';
import { MALLOC_DEV, mallocChannel } from './fixtures/malloc-channel';
import { FakeGuest, GPA } from './fixtures/fake-guest';


const dev = MALLOC_DEV;

function setup(t: { teardown(fn: () => unknown): void }, opts: { eventIdx?: boolean; channel?: IoChannel | null } = {}) {
  const g = new FakeGuest(16);
  const errors: Array<{ reason: string; fatal: boolean }> = [];
  const ctx: BlkQueueContext = {
    dev,
    channel: opts.channel === undefined ? mallocChannel(t) : opts.channel,
    onGuestError: (_q, reason, fatal) => errors.push({ reason, fatal }),
  };
  let signals = 0;
  const q = new BlkQueue(0, g.queue(opts.eventIdx ?? false), g.mem, ctx, () => signals++);
  return { g, q, ctx, errors, signals: () => signals };
}

const turn = () => new Promise((r) => setImmediate(r));
async function settle(q: BlkQueue): Promise<void> {
  for (let i = 0; i < 50 && (q.inflight > 0 || q.vq.unpublished > 0); i++) await turn();
  await turn();
}

t.test('a batch of writes then reads completes with one signal per batch', async (t) => {
  const { g, q, signals } = setup(t);
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const st = g.alloc(1, 0xee);
    statuses.push(st);
    g.post([{ gpa: g.header(BlkType.OUT, i * 8), len: 16 }, { gpa: g.alloc(4096, i + 1), len: 4096 }, { gpa: st, len: 1, write: true }]);
  }
  q.process();
  t.equal(q.inflight, 4, 'four bdev I/Os submitted in one pass');
  await settle(q);
  t.equal(g.usedIdx(), 4);
  t.equal(signals(), 1, 'one call signal for the batch');
  t.same(statuses.map((s) => g.at(s, 1)[0]), [0, 0, 0, 0]);
  const data = g.alloc(4096 * 4);
  const st = g.alloc(1, 0xee);
  g.post([{ gpa: g.header(BlkType.IN, 0), len: 16 }, { gpa: data, len: 4096 * 4, write: true }, { gpa: st, len: 1, write: true }]);
  q.process();
  await settle(q);
  t.equal(g.at(st, 1)[0], BlkStatus.OK);
  for (let i = 0; i < 4; i++) t.ok(g.at(data + i * 4096, 4096).every((b) => b === i + 1), `block group ${i} read back`);
  t.same(g.used(4), { id: g.used(4).id, len: 4096 * 4 + 1 }, 'used len counts data + status');
});

t.test('hostile chains complete with used len 0 and the queue keeps working', async (t) => {
  const { g, q, errors } = setup(t);
  g.post([{ gpa: 0x10, len: 16 }]);
  const st = g.alloc(1, 0xee);
  g.post([{ gpa: g.header(BlkType.IN, 0), len: 16 }, { gpa: g.alloc(512), len: 512, write: true }, { gpa: st, len: 1, write: true }]);
  q.process();
  await settle(q);
  t.equal(g.usedIdx(), 2);
  t.equal(g.used(0).len, 0, 'bad chain: used len 0');
  t.equal(g.at(st, 1)[0], 0, 'next request fine');
  t.match(errors, [{ reason: /outside guest memory/, fatal: false }]);
});

t.test('unknown type completes with UNSUPP without a bdev I/O', async (t) => {
  const { g, q } = setup(t);
  const st = g.alloc(1, 0xee);
  g.post([{ gpa: g.header(77, 0), len: 16 }, { gpa: st, len: 1, write: true }]);
  q.process();
  t.equal(q.inflight, 0);
  await settle(q);
  t.equal(g.at(st, 1)[0], BlkStatus.UNSUPP);
  t.equal(g.used(0).len, 1);
});

t.test('avail idx far ahead or a head out of range stops the queue', async (t) => {
  const a = setup(t);
  a.g.setAvailIdx(100);
  a.q.process();
  t.equal(a.q.stopped, true);
  t.match(a.errors, [{ reason: /ahead/, fatal: true }]);
  const b = setup(t);
  b.g.postHead(40);
  b.q.process();
  t.equal(b.q.stopped, true);
  t.match(b.errors, [{ reason: /head 40/, fatal: true }]);
});

t.test('without a channel (bdev removed) requests fail with IOERR', async (t) => {
  const { g, q } = setup(t, { channel: null });
  const st = g.alloc(1, 0xee);
  g.post([{ gpa: g.header(BlkType.IN, 0), len: 16 }, { gpa: g.alloc(512), len: 512, write: true }, { gpa: st, len: 1, write: true }]);
  q.process();
  await settle(q);
  t.equal(g.at(st, 1)[0], BlkStatus.IOERR);
});

t.test('stop drains in-flight I/O and publishes its used elements', async (t) => {
  const { g, q } = setup(t);
  g.post([{ gpa: g.header(BlkType.OUT, 0), len: 16 }, { gpa: g.alloc(512), len: 512 }, { gpa: g.alloc(1), len: 1, write: true }]);
  q.process();
  t.equal(q.inflight, 1);
  await q.stop();
  t.equal(q.inflight, 0);
  t.equal(g.usedIdx(), 1, 'published before stop resolved');
  g.post([{ gpa: g.header(BlkType.OUT, 0), len: 16 }, { gpa: g.alloc(512), len: 512 }, { gpa: g.alloc(1), len: 1, write: true }]);
  q.process();
  t.equal(q.inflight, 0, 'a stopped queue takes nothing');
});

t.test('EVENT_IDX: avail_event is armed after draining', async (t) => {
  const { g, q } = setup(t, { eventIdx: true });
  g.post([{ gpa: g.header(BlkType.GET_ID, 0), len: 16 }, { gpa: g.alloc(20), len: 20, write: true }, { gpa: g.alloc(1), len: 1, write: true }]);
  q.process();
  t.equal(g.view.getUint16(g.usedOff + 4 + 8 * 16, true), 1);
  await settle(q);
  t.equal(g.usedIdx(), 1);
});

t.test('data written through the queue is on the bdev', async (t) => {
  const ch = mallocChannel(t);
  const { g, q } = setup(t, { channel: ch });
  g.post([{ gpa: g.header(BlkType.OUT, 100), len: 16 }, { gpa: g.alloc(512, 0x77), len: 512 }, { gpa: g.alloc(1), len: 1, write: true }]);
  q.process();
  await settle(q);
  const buf = Buffer.alloc(512);
  await io.read(ch, buf, 100, 1);
  t.ok(buf.every((b) => b === 0x77));
  void GPA;
});
