import t from 'tap';
import { randomBytes } from 'node:crypto';
import { io, IoType } from '@blockwork/core';
import type { VirtioBlkBdev } from '../src';
import { setup } from './fixtures/env';
import { haveQsd, startQsd } from './fixtures/qsd';

const attach = (sock: string) => ({ name: 'VirtioBlk0', trtype: 'user', traddr: sock, dev_type: 'blk', vq_size: 64 });

t.test('describes itself as SPDK does and replays from its config entry', async (t) => {
  if (!haveQsd(t)) return;
  const qsd = await startQsd(t, 'file');
  const { layer, call } = setup(t);
  await call('bdev_virtio_attach_controller', attach(qsd.sock));
  const b = layer.require('VirtioBlk0');
  t.equal(b.productName, 'VirtioBlk Disk');
  t.match(b.driverSpecific(), { virtio: { trtype: 'user', traddr: qsd.sock, vq_count: 1, vq_size: 64, features: /^0x[0-9a-f]+$/ } });
  t.same(b.configEntry(), { method: 'bdev_virtio_attach_controller', params: attach(qsd.sock) });
  t.same([IoType.READ, IoType.WRITE, IoType.FLUSH, IoType.UNMAP, IoType.WRITE_ZEROES, IoType.RESET].map((x) => b.ioTypeSupported(x)),
    [true, true, true, true, true, false], 'qsd on a file offers flush, discard and write zeroes');
  t.equal(b.optimalIoBoundary * b.blockSize, 128 * 1024, 'I/Os are split at the bounce chunk size');
  const entry = b.configEntry()!;
  await call('bdev_virtio_detach_controller', { name: 'VirtioBlk0' });
  await call(entry.method, entry.params);
  t.same(layer.require('VirtioBlk0').configEntry(), entry, 'same entry after replay');
});

t.test('unmap and write_zeroes read back zeros; a large I/O is split by the layer', async (t) => {
  if (!haveQsd(t)) return;
  const qsd = await startQsd(t, 'file');
  const { layer, call } = setup(t);
  await call('bdev_virtio_attach_controller', attach(qsd.sock));
  const desc = layer.open('VirtioBlk0', true);
  t.teardown(() => desc.close());
  const ch = desc.getIoChannel();
  const big = randomBytes(1 << 20);
  await io.write(ch, big, 0, 2048);
  const back = Buffer.alloc(1 << 20);
  await io.read(ch, back, 0, 2048);
  t.ok(back.equals(big), '1 MiB round trip through 128 KiB chunks');
  await io.unmap(ch, 0, 8);
  await io.writeZeroes(ch, 8, 8);
  const z = Buffer.alloc(8192, 0xee);
  await io.read(ch, z, 0, 16);
  t.ok(z.equals(Buffer.alloc(8192)), 'zeros after unmap and write_zeroes');
});

t.test('zero-copy buffers from allocDmaBuffer are used in place', async (t) => {
  if (!haveQsd(t)) return;
  const qsd = await startQsd(t, 'file');
  const { layer, call } = setup(t);
  await call('bdev_virtio_attach_controller', attach(qsd.sock));
  const b = layer.require('VirtioBlk0') as VirtioBlkBdev;
  const desc = layer.open('VirtioBlk0', true);
  t.teardown(() => desc.close());
  const ch = desc.getIoChannel();
  const w = b.allocDmaBuffer(8192)!;
  const r1 = b.allocDmaBuffer(4096)!;
  const r2 = b.allocDmaBuffer(4096)!;
  t.equal(w.buffer, b.driver.mem!.buffer, 'a view of the shared memory');
  w.set(randomBytes(8192));
  await io.write(ch, w, 100, 16);
  await io.read(ch, [r1, r2], 100, 16);
  t.ok(Buffer.concat([r1, r2]).equals(w), 'two-segment zero-copy read matches');
  t.ok(b.freeDmaBuffer(w) && b.freeDmaBuffer(r1) && b.freeDmaBuffer(r2));
  t.notOk(b.freeDmaBuffer(new Uint8Array(8)), 'foreign buffers are ignored');
  t.equal(b.allocDmaBuffer(64 << 20), null, 'larger than the area');
});

t.test('a back end that dies fails outstanding and new I/O with -ENODEV', async (t) => {
  if (!haveQsd(t)) return;
  const qsd = await startQsd(t, 'null');
  const { layer, call } = setup(t);
  await call('bdev_virtio_attach_controller', attach(qsd.sock));
  const desc = layer.open('VirtioBlk0', true);
  const ch = desc.getIoChannel();
  qsd.proc.kill('SIGKILL');
  await new Promise((r) => qsd.proc.once('exit', r));
  await new Promise((r) => setTimeout(r, 50));
  const err = await io.read(ch, Buffer.alloc(512), 0, 1).then(() => null, (e: { status: number }) => e);
  t.equal(err?.status, -19, 'read fails with -ENODEV');
  desc.close();
  await call('bdev_virtio_detach_controller', { name: 'VirtioBlk0' });
  t.equal(layer.get('VirtioBlk0'), undefined, 'detach still works');
});
