import t from 'tap';
import { computeLayout } from '../src/memory-layout';
import { RawQueue } from '../src/raw-queue';
import { VirtQueue } from '../src/virtqueue';

function rig(t: { teardown(fn: () => unknown): void }) {
  const layout = computeLayout(1, 8, 4096, 0);
  const buf = new ArrayBuffer(layout.size);
  const vq = new VirtQueue(layout.queues[0], buf, { blockSize: 512, segMax: 1, maxDiscardSectors: 0, maxWriteZeroesSectors: 0 });
  t.teardown(() => vq.close());
  return { r: new RawQueue(vq, buf), dv: new DataView(buf), L: layout.queues[0] };
}

t.test('writeDesc stores any address, length, flags and next at the spec offsets', async (t) => {
  const { r, dv, L } = rig(t);
  r.writeDesc(3, { addr: 0xffff_ffff_ffff_f000n, len: 0xffffffff, flags: 7, next: 3 });
  const o = L.descOff + 48;
  t.equal(dv.getBigUint64(o, true), 0xffff_ffff_ffff_f000n);
  t.equal(dv.getUint32(o + 8, true), 0xffffffff);
  t.equal(dv.getUint16(o + 12, true), 7);
  t.equal(dv.getUint16(o + 14, true), 3, 'a self loop is allowed');
});

t.test('pushAvail publishes any heads; setAvailIdx any index; headers and bytes land where asked', async (t) => {
  const { r, dv, L } = rig(t);
  r.pushAvail([1, 500, 2]);
  t.equal(dv.getUint16(L.availOff + 2, true), 3);
  t.equal(dv.getUint16(L.availOff + 6, true), 500);
  r.setAvailIdx(0x1234);
  t.equal(dv.getUint16(L.availOff + 2, true), 0x1234);
  r.writeHeader(r.scratch.addr, 77, 5n);
  t.equal(dv.getUint32(r.scratch.addr, true), 77);
  t.equal(dv.getBigUint64(r.scratch.addr + 8, true), 5n);
  r.write(r.scratch.addr + 100, Buffer.from([1, 2]));
  t.same([...r.read(r.scratch.addr + 100, 2)], [1, 2]);
  t.equal(r.scratch.size, 64 * 8);
});

t.test('used ring accessors and waitUsed', async (t) => {
  const { r, dv, L } = rig(t);
  t.equal(await r.waitUsed(1, 30), false, 'times out');
  dv.setUint32(L.usedOff + 4 + 8, 6, true);
  dv.setUint32(L.usedOff + 4 + 12, 513, true);
  dv.setUint16(L.usedOff + 2, 2, true);
  t.equal(r.usedIdx(), 2);
  t.same(r.usedElem(1), { id: 6, len: 513 });
  t.equal(await r.waitUsed(2, 30), true);
});
