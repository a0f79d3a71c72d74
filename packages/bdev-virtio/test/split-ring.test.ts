import t from 'tap';
import { computeLayout } from '../src/memory-layout';
import { SplitRing } from '../src/split-ring';

function rig() {
  const L = computeLayout(1, 8, 4096, 0).queues[0];
  const buf = new ArrayBuffer(computeLayout(1, 8, 4096, 0).size);
  return { L, ring: new SplitRing(L, buf), dv: new DataView(buf) };
}

t.test('chains link by next, publish once, and kick unless NO_NOTIFY', async (t) => {
  const { L, ring, dv } = rig();
  t.equal(ring.publish(), false, 'nothing to publish');
  const head = ring.peekHead();
  const d0 = ring.take(0x1000, 16, 0);
  t.equal(d0, head);
  const d1 = ring.link(d0, 2 ** 33, 512, 2);
  ring.add(head, 2);
  t.equal(dv.getUint16(L.descOff + 16 * d0 + 12, true), 1, 'NEXT set on the first');
  t.equal(dv.getUint16(L.descOff + 16 * d0 + 14, true), d1);
  t.equal(dv.getBigUint64(L.descOff + 16 * d1, true), 2n ** 33n, 'addresses above 4 GiB');
  t.equal(ring.publish(), true);
  t.equal(dv.getUint16(L.availOff + 2, true), 1);
  t.equal(ring.publish(), false, 'already published');
  dv.setUint16(L.usedOff, 1, true); // device: NO_NOTIFY
  ring.add(ring.take(0, 1, 0), 1);
  t.equal(ring.publish(), false, 'published but no kick');
  t.equal(dv.getUint16(L.availOff + 2, true), 2);
});

t.test('free uses the shadow links even if the device scribbled on the table', async (t) => {
  const { L, ring, dv } = rig();
  const head = ring.take(0, 16, 0);
  ring.link(ring.link(head, 0, 1, 0), 0, 1, 0);
  ring.add(head, 3);
  t.equal(ring.nFree, 5);
  for (let i = 0; i < 8; i++) dv.setUint16(L.descOff + 16 * i + 14, 7, true);
  ring.free(head);
  t.equal(ring.nFree, 8);
  const got = new Set(Array.from({ length: 8 }, () => ring.take(0, 0, 0)));
  t.equal(got.size, 8, 'every descriptor exactly once');
});

t.test('nextUsed walks the snapshot taken by beginReap', async (t) => {
  const { L, ring, dv } = rig();
  dv.setUint32(L.usedOff + 4, 3, true);
  dv.setUint32(L.usedOff + 12, 5, true);
  dv.setUint16(L.usedOff + 2, 2, true);
  ring.beginReap();
  t.same([ring.nextUsed(), ring.nextUsed(), ring.nextUsed()], [3, 5, -1]);
});
