import t from 'tap';
import { type BdevIo, IoType } from '@blockwork/core';
import { VirtioBlkStatus, VirtioBlkType, VringDescFlags } from '@blockwork/vhost-user';
import { computeLayout } from '../src/memory-layout';
import { VirtQueue } from '../src/virtqueue';

/** A queue over plain memory with the test acting as the device. */
function rig(t: { teardown(fn: () => unknown): void }, limits = {}) {
  const layout = computeLayout(1, 16, 8192, 65536);
  const buf = new ArrayBuffer(layout.size);
  const vq = new VirtQueue(layout.queues[0], buf, { blockSize: 512, segMax: 4, maxDiscardSectors: 8, maxWriteZeroesSectors: 8, ...limits });
  t.teardown(() => vq.close());
  const dv = new DataView(buf);
  const L = layout.queues[0];
  let seenAvail = 0;
  let usedIdx = 0;
  const device = {
    /** Chains published since the last call: [{head, descs:[{addr,len,flags}], type, sector}]. */
    take() {
      const out = [];
      const idx = dv.getUint16(L.availOff + 2, true);
      for (; seenAvail !== idx; seenAvail = (seenAvail + 1) & 0xffff) {
        const head = dv.getUint16(L.availOff + 4 + 2 * (seenAvail % L.size), true);
        const descs = [];
        for (let d = head, more = true; more;) {
          const o = L.descOff + 16 * d;
          const flags = dv.getUint16(o + 12, true);
          descs.push({ addr: Number(dv.getBigUint64(o, true)), len: dv.getUint32(o + 8, true), flags });
          more = (flags & VringDescFlags.NEXT) !== 0;
          d = dv.getUint16(o + 14, true);
        }
        out.push({ head, descs, type: dv.getUint32(descs[0].addr, true), sector: Number(dv.getBigUint64(descs[0].addr + 8, true)) });
      }
      return out;
    },
    /** Writes the status byte (unless undefined) and a used element, then lets the queue reap. */
    complete(c: { head: number; descs: { addr: number }[] }, status: number | undefined, id = c.head) {
      if (status !== undefined) dv.setUint8(c.descs[c.descs.length - 1].addr, status);
      const o = L.usedOff + 4 + 8 * (usedIdx % L.size);
      dv.setUint32(o, id, true);
      usedIdx = (usedIdx + 1) & 0xffff;
      dv.setUint16(L.usedOff + 2, usedIdx, true);
    },
  };
  return { vq, device, buf, dv };
}

const tick = () => new Promise((r) => setImmediate(r));
function mkio(type: IoType, offsetBlocks: number, numBlocks: number, iovs: Uint8Array[] = []): BdevIo {
  return { type, offsetBlocks, numBlocks, iovs, driverCtx: null };
}

t.test('a batch becomes chains of header, data and status published together', async (t) => {
  const { vq, device } = rig(t);
  const results: number[] = [];
  const done = (_io: BdevIo, st: number) => results.push(st);
  vq.submit(mkio(IoType.WRITE, 8, 2, [Buffer.alloc(1024, 7)]), done);
  vq.submit(mkio(IoType.READ, 0, 1, [Buffer.alloc(512)]), done);
  vq.submit(mkio(IoType.FLUSH, 0, 0), done);
  await tick();
  const chains = device.take();
  t.same(chains.map((c) => [c.type, c.sector, c.descs.length]), [[VirtioBlkType.OUT, 8, 3], [VirtioBlkType.IN, 0, 3], [VirtioBlkType.FLUSH, 0, 2]]);
  t.equal(chains[0].descs[1].flags & VringDescFlags.WRITE, 0, 'write data is device-readable');
  t.equal(chains[1].descs[1].flags & VringDescFlags.WRITE, VringDescFlags.WRITE, 'read data is device-writable');
  t.equal(chains[0].descs[0].len, 16);
  t.equal(chains[2].descs[1].len, 1);
  for (const c of chains) device.complete(c, VirtioBlkStatus.OK);
  vq.reap();
  t.same(results, [0, 0, 0]);
  t.equal(vq.outstanding, 0);
});

t.test('status bytes map to errno; an unwritten status is -EIO; bogus used ids are counted', async (t) => {
  const { vq, device } = rig(t);
  const results: number[] = [];
  for (let i = 0; i < 3; i++) vq.submit(mkio(IoType.FLUSH, 0, 0), (_io, st) => results.push(st));
  await tick();
  const [a, b, c] = device.take();
  device.complete(a, VirtioBlkStatus.IOERR);
  device.complete(b, VirtioBlkStatus.UNSUPP);
  device.complete(c, undefined);
  device.complete(c, undefined, 9999);
  vq.reap();
  t.same(results, [-5, -95, -5]);
  t.equal(vq.bogusCompletions, 1);
});

t.test('read data is copied back from the bounce chunk', async (t) => {
  const { vq, device, dv } = rig(t);
  const dst = [Buffer.alloc(512), Buffer.alloc(512)];
  let status = -1;
  vq.submit(mkio(IoType.READ, 4, 2, dst), (_io, st) => { status = st; });
  await tick();
  const [c] = device.take();
  for (let i = 0; i < 1024; i++) dv.setUint8(c.descs[1].addr + i, i & 0xff);
  device.complete(c, VirtioBlkStatus.OK);
  vq.reap();
  t.equal(status, 0);
  t.equal(dst[1][5], (512 + 5) & 0xff);
});

t.test('zero-copy buffers of the shared memory are described in place', async (t) => {
  const { vq, device, buf } = rig(t);
  const a = new Uint8Array(buf, 0x9000, 512);
  const b = new Uint8Array(buf, 0xa000, 512);
  vq.submit(mkio(IoType.WRITE, 0, 2, [a, b]), () => {});
  await tick();
  const [c] = device.take();
  t.same(c.descs.slice(1, 3).map((d) => [d.addr, d.len]), [[0x9000, 512], [0xa000, 512]]);
});

t.test('an UNMAP above max_discard_sectors is split and completes once', async (t) => {
  const { vq, device } = rig(t);
  const results: number[] = [];
  vq.submit(mkio(IoType.UNMAP, 0, 20), (_io, st) => results.push(st));
  await tick();
  const chains = device.take();
  t.equal(chains.length, 3, '20 sectors in pieces of 8');
  t.ok(chains.every((c) => c.type === VirtioBlkType.DISCARD && c.descs.length === 3 && c.descs[1].len === 16));
  device.complete(chains[0], VirtioBlkStatus.OK);
  device.complete(chains[1], VirtioBlkStatus.IOERR);
  vq.reap();
  t.same(results, [], 'not before the last piece');
  device.complete(chains[2], VirtioBlkStatus.OK);
  vq.reap();
  t.same(results, [-5], 'once, with the first error');
});

t.test('I/O beyond free descriptors or chunks waits and goes out after completions', async (t) => {
  const { vq, device } = rig(t);
  let completed = 0;
  for (let i = 0; i < 8; i++) vq.submit(mkio(IoType.WRITE, i, 1, [Buffer.alloc(512)]), () => completed++);
  await tick();
  const first = device.take();
  t.equal(first.length, 5, '16 descriptors hold 5 three-descriptor chains');
  t.equal(vq.outstanding, 8);
  for (const c of first) device.complete(c, VirtioBlkStatus.OK);
  vq.reap();
  t.equal(device.take().length, 3, 'the rest went out in the reap');
  t.equal(completed, 5);
});

t.test('close fails queued and in-flight I/O with -ENODEV, once each', async (t) => {
  const { vq } = rig(t);
  const results: number[] = [];
  vq.submit(mkio(IoType.UNMAP, 0, 20), (_io, st) => results.push(st));
  await tick();
  vq.close();
  vq.submit(mkio(IoType.FLUSH, 0, 0), (_io, st) => results.push(st));
  await tick();
  t.same(results, [-19, -19]);
});
