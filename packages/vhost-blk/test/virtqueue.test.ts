import t from 'tap';
import { ChainError, DescChain, SplitVirtqueue, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../src/virtqueue';
import { FakeGuest, GPA, MEM_SIZE, UVA } from './fixtures/fake-guest';

t.test('pops heads in order, reading avail idx once per batch', async (t) => {
  const g = new FakeGuest(8);
  const q = g.queue();
  const b = g.alloc(512);
  const h1 = g.post([{ gpa: b, len: 512 }]);
  const h2 = g.post([{ gpa: b, len: 512 }]);
  const avail = q.availIdx();
  t.equal(q.pending(avail), 2);
  t.equal(q.nextHead(), h1);
  t.equal(q.nextHead(), h2);
  t.equal(q.pending(avail), 0);
  t.equal(q.lastAvailIdx, 2);
});

t.test('walks a chain into translated buffers with directions', async (t) => {
  const g = new FakeGuest(8);
  const q = g.queue();
  const a = g.alloc(16);
  const d = g.alloc(4096);
  const s = g.alloc(1);
  const head = g.post([{ gpa: a, len: 16 }, { gpa: d, len: 4096, write: true }, { gpa: s, len: 1, write: true }]);
  const c = new DescChain(8);
  t.equal(q.walk(head, c), 0);
  t.equal(c.count, 3);
  t.same([...c.len.subarray(0, 3)], [16, 4096, 1]);
  t.same([...c.writable.subarray(0, 3)], [0, 1, 1]);
  t.equal(c.offset[1], d - GPA);
  t.equal(c.region[1], 0);
});

t.test('expands one level of indirect descriptors', async (t) => {
  const g = new FakeGuest(8);
  const q = g.queue();
  const a = g.alloc(16);
  const s = g.alloc(1);
  const head = g.postIndirect([{ gpa: a, len: 16 }, { gpa: a, len: 8 }, { gpa: s, len: 1, write: true }]);
  const c = new DescChain(8);
  t.equal(q.walk(head, c), 0);
  t.equal(c.count, 3);
  t.same([...c.len.subarray(0, 3)], [16, 8, 1]);
});

t.test('hostile chains are refused without touching memory outside the mapping', async (t) => {
  const g = new FakeGuest(8);
  const q = g.queue();
  const c = new DescChain(8);
  const ok = g.alloc(16);
  t.equal(q.walk(8, c), ChainError.HEAD_RANGE, 'head >= size');
  g.setDesc(0, GPA + MEM_SIZE - 8, 16, 0, 0);
  t.equal(q.walk(0, c), ChainError.BUFFER_RANGE, 'buffer crossing the end of memory');
  g.setDesc(0, 0x1000, 16, 0, 0);
  t.equal(q.walk(0, c), ChainError.BUFFER_RANGE, 'buffer below memory');
  g.view.setUint32(g.descOff + 4, 0xffffffff, true);
  t.equal(q.walk(0, c), ChainError.BUFFER_RANGE, 'address above 2^53');
  g.setDesc(0, ok, 16, VIRTQ_DESC_F_NEXT, 1);
  g.setDesc(1, ok, 16, VIRTQ_DESC_F_NEXT, 0);
  t.equal(q.walk(0, c), ChainError.TOO_LONG, 'loop 0 -> 1 -> 0');
  g.setDesc(0, ok, 16, VIRTQ_DESC_F_NEXT, 0);
  t.equal(q.walk(0, c), ChainError.TOO_LONG, 'self loop');
  g.setDesc(0, ok, 16, VIRTQ_DESC_F_NEXT, 9);
  t.equal(q.walk(0, c), ChainError.NEXT_RANGE, 'next out of the table');
  for (let i = 0; i < 8; i++) g.setDesc(i, ok, 16, VIRTQ_DESC_F_NEXT, (i + 1) % 8);
  t.equal(q.walk(0, c), ChainError.TOO_LONG, 'chain longer than the queue');
  t.ok(c.count <= 8, 'never wrote past the chain capacity');
});

t.test('hostile indirect tables are refused', async (t) => {
  const g = new FakeGuest(8);
  const q = g.queue();
  const c = new DescChain(8);
  const table = g.alloc(64);
  const ok = g.alloc(16);
  g.setDesc(0, table, 20, VIRTQ_DESC_F_INDIRECT, 0);
  t.equal(q.walk(0, c), ChainError.INDIRECT_LEN, 'length not a multiple of 16');
  g.setDesc(0, table, 0, VIRTQ_DESC_F_INDIRECT, 0);
  t.equal(q.walk(0, c), ChainError.INDIRECT_LEN, 'empty table');
  g.setDesc(0, table, 16 * 9, VIRTQ_DESC_F_INDIRECT, 0);
  t.equal(q.walk(0, c), ChainError.INDIRECT_LEN, 'more entries than the queue size');
  g.setDesc(0, GPA + MEM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
  t.equal(q.walk(0, c), ChainError.INDIRECT_RANGE, 'table outside memory');
  g.setDesc(0, table, 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
  t.equal(q.walk(0, c), ChainError.INDIRECT_WITH_NEXT, 'INDIRECT with NEXT');
  g.setDesc(0, table, 32, VIRTQ_DESC_F_INDIRECT, 0);
  g.setDesc(0, table, 32, VIRTQ_DESC_F_INDIRECT, 0, table);
  t.equal(q.walk(0, c), ChainError.INDIRECT_NESTED, 'indirect inside indirect');
  g.setDesc(0, ok, 16, VIRTQ_DESC_F_NEXT, 0, table);
  t.equal(q.walk(0, c), ChainError.TOO_LONG, 'loop inside the table');
  g.setDesc(0, ok, 16, VIRTQ_DESC_F_NEXT, 2, table);
  t.equal(q.walk(0, c), ChainError.NEXT_RANGE, 'next beyond the table');
});

/** The error text, or 'queue' (never hand tap a queue: diffing 1 MiB of guest memory is slow). */
function err(q: SplitVirtqueue | string): string {
  return typeof q === 'string' ? q : 'queue';
}

t.test('ring setup checks sizes, alignment and placement', async (t) => {
  const g = new FakeGuest(8);
  const addrs = { desc: UVA, avail: UVA + 128, used: UVA + 4096 };
  t.match(err(SplitVirtqueue.create(g.mem, 6, addrs, false, 0)), /power of two/);
  t.match(err(SplitVirtqueue.create(g.mem, 65536, addrs, false, 0)), /power of two/);
  t.match(err(SplitVirtqueue.create(g.mem, 8, { ...addrs, desc: UVA + 8 }, false, 0)), /misaligned/);
  t.match(err(SplitVirtqueue.create(g.mem, 8, { ...addrs, used: UVA + MEM_SIZE - 40 }, false, 0)), /used ring is outside/);
  t.match(err(SplitVirtqueue.create(g.mem, 8, { ...addrs, avail: UVA + MEM_SIZE - 18 }, false, 0)), /avail ring is outside/);
  t.match(err(SplitVirtqueue.create(g.mem, 8, { ...addrs, desc: UVA + MEM_SIZE - 64 }, false, 0)), /descriptor table is outside/);
  t.match(err(SplitVirtqueue.create(g.mem, 8, { ...addrs, desc: 0 }, false, 0)), /descriptor table is outside/);
  t.match(err(SplitVirtqueue.create(g.mem, 32768, { ...addrs, desc: UVA + 0x80010 }, false, 0)), /descriptor table is outside/, 'a 32768-entry table does not fit');
  t.type(SplitVirtqueue.create(g.mem, 8, addrs, true, 0), SplitVirtqueue);
});

t.test('used elements become visible only when used->idx is published', async (t) => {
  const g = new FakeGuest(8);
  const q = g.queue(false, 5);
  q.pushUsed(3, 513);
  t.equal(g.usedIdx(), 0, 'not yet published');
  t.equal(q.unpublished, 1);
  t.equal(q.publishUsed(), true, 'signal: driver did not suppress interrupts');
  t.equal(g.usedIdx(), 6, 'base 5 + 1');
  t.same(g.used(5), { id: 3, len: 513 });
  t.equal(q.publishUsed(), false, 'nothing new: no signal');
  g.view.setUint16(g.availOff, 1, true); // VRING_AVAIL_F_NO_INTERRUPT
  q.pushUsed(1, 1);
  t.equal(q.publishUsed(), false, 'NO_INTERRUPT honoured');
  t.equal(g.usedIdx(), 7);
});

t.test('EVENT_IDX: signal only when used_event is crossed; avail_event armed', async (t) => {
  const g = new FakeGuest(8);
  const q = g.queue(true);
  const usedEvent = (v: number) => g.view.setUint16(g.availOff + 4 + 2 * 8, v, true);
  usedEvent(2);
  q.pushUsed(0, 1);
  t.equal(q.publishUsed(), false, 'idx 1: used_event 2 not crossed');
  q.pushUsed(1, 1);
  q.pushUsed(2, 1);
  t.equal(q.publishUsed(), true, 'idx 3 crosses used_event 2');
  usedEvent(0xffff);
  q.pushUsed(3, 1);
  t.equal(q.publishUsed(), false, 'wrapped event far ahead');
  const b = g.alloc(16);
  g.post([{ gpa: b, len: 16 }]);
  q.nextHead();
  q.armAvailEvent();
  t.equal(g.view.getUint16(g.usedOff + 4 + 8 * 8, true), 1, 'avail_event = last_avail_idx');
});

t.test('free-running indices wrap at 2^16', async (t) => {
  const g = new FakeGuest(8);
  const q = g.queue(false, 0xffff);
  g.availIdx = 0xffff;
  const b = g.alloc(16);
  g.post([{ gpa: b, len: 16 }]);
  g.post([{ gpa: b, len: 16 }]);
  t.equal(q.pending(q.availIdx()), 2);
  q.nextHead();
  q.nextHead();
  t.equal(q.lastAvailIdx, 1);
  q.pushUsed(0, 1);
  q.pushUsed(1, 1);
  q.publishUsed();
  t.equal(g.usedIdx(), 1);
});
