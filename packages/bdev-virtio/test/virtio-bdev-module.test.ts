import t from 'tap';
import { openSync, readSync, closeSync } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import { io, IoType } from '@blockwork/core';
import { setup } from './fixtures/env';
import { haveQsd, startQsd, tempDir } from './fixtures/qsd';

const attach = (sock: string, extra: Record<string, unknown> = {}) => ({ name: 'VirtioBlk0', trtype: 'user', traddr: sock, dev_type: 'blk', ...extra });

function hostBytes(path: string, off: number, len: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(len);
    readSync(fd, b, 0, len, off);
    return b;
  } finally {
    closeSync(fd);
  }
}

t.test('attach to qemu-storage-daemon: capacity, data on the host file, flush, detach', async (t) => {
  if (!haveQsd(t)) return;
  const qsd = await startQsd(t, 'file');
  const { layer, call, module } = setup(t);
  t.same(await call('bdev_virtio_attach_controller', attach(qsd.sock)), ['VirtioBlk0']);
  const b = layer.require('VirtioBlk0');
  t.equal(b.numBlocks * b.blockSize, 64 << 20, 'capacity matches the 64 MiB image');
  t.ok(b.ioTypeSupported(IoType.FLUSH));
  const desc = layer.open('VirtioBlk0', true);
  const ch = desc.getIoChannel();
  const data = randomBytes(12 * 1024);
  await io.write(ch, data, 2048, 24);
  const back = Buffer.alloc(data.length);
  await io.read(ch, back, 2048, 24);
  t.ok(back.equals(data), 'read back what was written');
  await io.flush(ch);
  t.ok(hostBytes(qsd.image!, 2048 * b.blockSize, data.length).equals(data), 'the host file has the bytes at the right offset');
  desc.close();
  t.equal(await call('bdev_virtio_detach_controller', { name: 'VirtioBlk0' }), true);
  t.equal(layer.get('VirtioBlk0'), undefined);
  t.same(module.controllerNames(), []);
});

t.test('5,000 random verified I/Os at QD32 against qemu-storage-daemon', async (t) => {
  if (!haveQsd(t)) return;
  const qsd = await startQsd(t, 'file', { sizeMiB: 16 });
  const { layer, call } = setup(t);
  await call('bdev_virtio_attach_controller', attach(qsd.sock, { vq_size: 128 }));
  const desc = layer.open('VirtioBlk0', true);
  t.teardown(() => desc.close());
  const ch = desc.getIoChannel();
  const bs = desc.bdev.blockSize;
  const units = (16 << 20) / 4096;
  // Model of the device in 4 KiB units: a generation number stamped in each written unit.
  const model = new Uint32Array(units);
  const busy = new Uint8Array(units);
  const TOTAL = 5000;
  let started = 0, finished = 0, bad = 0, failed = 0;
  await new Promise<void>((resolve) => {
    const next = (): void => {
      if (started >= TOTAL) {
        if (finished === TOTAL) resolve();
        return;
      }
      let u = randomInt(units - 8);
      const n = 1 + randomInt(8);
      while ([...busy.subarray(u, u + n)].some((x) => x)) u = randomInt(units - 8);
      busy.fill(1, u, u + n);
      started++;
      const buf = Buffer.alloc(n * 4096);
      const gen = started;
      const finish = (st: number, write: boolean) => {
        if (st !== 0) failed++;
        else if (write) model.fill(gen, u, u + n);
        else for (let k = 0; k < n; k++) if (buf.readUInt32LE(k * 4096) !== model[u + k]) bad++;
        busy.fill(0, u, u + n);
        finished++;
        next();
      };
      if (randomInt(2) === 0) {
        for (let k = 0; k < n; k++) buf.writeUInt32LE(gen, k * 4096);
        ch.write([buf], (u * 4096) / bs, (n * 4096) / bs, (st) => finish(st, true));
      } else {
        ch.read([buf], (u * 4096) / bs, (n * 4096) / bs, (st) => finish(st, false));
      }
    };
    for (let i = 0; i < 32; i++) next();
  });
  t.equal(failed, 0, 'no I/O failed');
  t.equal(bad, 0, 'every read matched the last completed write');
});

t.test('qemu-storage-daemon null-co: throughput sanity at QD32', async (t) => {
  if (!haveQsd(t)) return;
  const qsd = await startQsd(t, 'null');
  const { layer, call } = setup(t);
  await call('bdev_virtio_attach_controller', attach(qsd.sock));
  const desc = layer.open('VirtioBlk0', true);
  t.teardown(() => desc.close());
  const ch = desc.getIoChannel();
  const N = 100_000, QD = 32;
  const bufs = Array.from({ length: QD }, () => Buffer.alloc(4096));
  let sub = 0, done = 0, failed = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const cb = (st: number, i: unknown): void => {
      if (st !== 0) failed++;
      if (++done === N) return resolve();
      if (sub < N) {
        sub++;
        ch.read([bufs[i as number]], randomInt((1 << 30) / 4096) * 8, 8, cb, i);
      }
    };
    for (let i = 0; i < QD; i++) {
      sub++;
      ch.read([bufs[i]], i * 8, 8, cb, i);
    }
  });
  const iops = Math.round(N / ((performance.now() - t0) / 1000));
  t.comment(`qsd null-co 4 KiB random read QD32: ${iops} IOPS`);
  t.equal(failed, 0);
  t.ok(iops > 20_000, `front end is not pathologically slow (${iops} IOPS)`);
});

t.test('attach refuses pci, scsi, duplicates and unreachable sockets with coded errors', async (t) => {
  const { call } = setup(t);
  const dir = tempDir(t);
  await t.rejects(call('bdev_virtio_attach_controller', attach(join(dir, 's'), { trtype: 'pci' })), { code: 'VIRTIO_TRTYPE_UNSUPPORTED' });
  await t.rejects(call('bdev_virtio_attach_controller', attach(join(dir, 's'), { dev_type: 'scsi' })), { code: 'VIRTIO_DEV_TYPE_UNSUPPORTED' });
  await t.rejects(call('bdev_virtio_attach_controller', attach(join(dir, 'missing'))), { code: 'VIRTIO_CONNECT_FAILED', errno: 2 });
  await t.rejects(call('bdev_virtio_detach_controller', { name: 'nope' }), { code: 'VIRTIO_CONTROLLER_NOT_FOUND' });
  await t.rejects(call('bdev_virtio_attach_controller', attach(join(dir, 's'), { vq_size: 100 })), { code: 'VIRTIO_QUEUE_COUNT' });
});

t.test('a second controller with the same name is refused', async (t) => {
  if (!haveQsd(t)) return;
  const qsd = await startQsd(t, 'null');
  const { call } = setup(t);
  await call('bdev_virtio_attach_controller', attach(qsd.sock));
  await t.rejects(call('bdev_virtio_attach_controller', attach(qsd.sock)), { code: 'VIRTIO_CONTROLLER_EXISTS' });
});

t.test('more queues than the back end has is refused', async (t) => {
  if (!haveQsd(t)) return;
  const qsd = await startQsd(t, 'null');
  const { call } = setup(t);
  await t.rejects(call('bdev_virtio_attach_controller', attach(qsd.sock, { vq_count: 4 })), { code: 'VIRTIO_QUEUE_COUNT' });
});
