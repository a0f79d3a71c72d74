import t from 'tap';
import { computeLayout } from '../src/memory-layout';

t.test('parts are page-aligned, disjoint, in order, and nothing is at address 0', async (t) => {
  const l = computeLayout(2, 256, 128 * 1024, 4 << 20);
  t.equal(l.queues.length, 2);
  let end = 4096;
  for (const q of l.queues) {
    t.ok(q.descOff >= end, 'after the previous part');
    for (const off of [q.descOff, q.availOff, q.usedOff, q.hdrOff, q.chunkOff]) t.equal(off % 4096, 0);
    t.ok(q.availOff >= q.descOff + 16 * 256 && q.usedOff >= q.availOff + 6 + 2 * 256 && q.hdrOff >= q.usedOff + 6 + 8 * 256);
    t.equal(q.chunkCount, 85, 'vq_size/3 chunks');
    end = q.chunkOff + q.chunkCount * q.chunkSize;
  }
  t.equal(l.dmaOff, end);
  t.ok(l.size >= l.dmaOff + l.dmaSize && l.size % 4096 === 0);
});

t.test('chunk count is capped at 128 and at least 1', async (t) => {
  t.equal(computeLayout(1, 32768, 4096, 0).queues[0].chunkCount, 128);
  t.equal(computeLayout(1, 2, 4096, 0).queues[0].chunkCount, 1);
});
