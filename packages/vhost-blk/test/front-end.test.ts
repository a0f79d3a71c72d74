import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Daemon, io, type IoChannel } from '@blockwork/core';
import { startDaemon, tempDir } from './fixtures/daemon';

/**
 * Blockwork's own vhost-user-blk front end (@blockwork/bdev-virtio) attached to this target, in the
 * same daemon, over malloc, aio and uring bdevs: data through the whole vhost path and back.
 */
const PLUGINS = ['@blockwork/bdev-aio', '@blockwork/bdev-uring', '@blockwork/bdev-virtio', '@blockwork/vhost-blk'];
const MIB = 1 << 20;

interface Kind {
  name: string;
  create(d: Daemon, dir: string): Promise<string>;
  discard: boolean;
}

const KINDS: Kind[] = [
  { name: 'malloc', discard: true, create: async (d) => (await d.call('bdev_malloc_create', { name: 'Malloc0', num_blocks: 16384, block_size: 4096 })) as string },
  {
    name: 'aio', discard: true,
    create: async (d, dir) => {
      writeFileSync(join(dir, 'aio.img'), Buffer.alloc(64 * MIB));
      return (await d.call('bdev_aio_create', { name: 'aio0', filename: join(dir, 'aio.img'), block_size: 4096, fallocate: true })) as string;
    },
  },
  {
    name: 'uring', discard: true,
    create: async (d, dir) => {
      writeFileSync(join(dir, 'uring.img'), Buffer.alloc(64 * MIB));
      return (await d.call('bdev_uring_create', { name: 'uring0', filename: join(dir, 'uring.img'), block_size: 4096 })) as string;
    },
  },
];

async function attach(d: Daemon, dir: string, ctrlr: string, name: string): Promise<IoChannel> {
  t.same(await d.call('bdev_virtio_attach_controller', { name, trtype: 'user', traddr: join(dir, ctrlr), dev_type: 'blk', vq_count: 2 }), [name]);
  const desc = d.layer.open(name, true);
  return desc.getIoChannel();
}

/** xorshift32, so a failure is reproducible. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

/**
 * 10,000 random I/Os in batches of 32 on disjoint ranges (so the expected content of every read is
 * known), writes of random data, every read compared with a shadow copy.
 */
async function randomVerified(ch: IoChannel, blocks: number, count: number): Promise<number> {
  const bs = 4096;
  const shadow = Buffer.alloc(blocks * bs);
  for (let off = 0; off < blocks; off += 256) await io.read(ch, shadow.subarray(off * bs, (off + 256) * bs), off, 256);
  const rand = rng(0xb10c);
  const SLOTS = 32;
  const slotBlocks = Math.floor(blocks / SLOTS);
  let mismatches = 0;
  for (let done = 0; done < count; done += SLOTS) {
    const ops: Promise<void>[] = [];
    for (let s = 0; s < SLOTS && done + s < count; s++) {
      const n = 1 + Math.floor(rand() * 16);
      const off = s * slotBlocks + Math.floor(rand() * (slotBlocks - n));
      if (rand() < 0.5) {
        const data = Buffer.alloc(n * bs);
        for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((rand() * 0x100000000) >>> 0, i);
        ops.push(io.write(ch, data, off, n).then(() => void data.copy(shadow, off * bs)));
      } else {
        const buf = Buffer.alloc(n * bs);
        const expect = Buffer.from(shadow.subarray(off * bs, (off + n) * bs));
        ops.push(io.read(ch, buf, off, n).then(() => void (buf.equals(expect) || mismatches++)));
      }
    }
    await Promise.all(ops);
  }
  return mismatches;
}

for (const kind of KINDS) {
  t.test(`bdev-virtio front end on a ${kind.name} bdev through the target`, async (t) => {
    const dir = tempDir(t);
    const { d } = await startDaemon(t, { dir, plugins: PLUGINS });
    const bdev = await kind.create(d, dir);
    await d.call('vhost_create_blk_controller', { ctrlr: 'vhost.0', dev_name: bdev });
    await d.call('vhost_create_blk_controller', { ctrlr: 'vhost.ro', dev_name: bdev, readonly: true });
    const ch = await attach(d, dir, 'vhost.0', 'VirtioBlk0');
    const vb = d.layer.require('VirtioBlk0');
    t.equal(vb.blockSize, 4096, 'block size through the config space');
    t.equal(vb.numBlocks, 16384, 'capacity through the config space');

    const pattern = Buffer.alloc(256 * 1024);
    for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7 + 3) & 0xff;
    await io.write(ch, pattern, 100, 64);
    const back = Buffer.alloc(pattern.length);
    await io.read(ch, back, 100, 64);
    t.ok(back.equals(pattern), '256 KiB pattern read back through the front end');
    const direct = Buffer.alloc(pattern.length);
    const hd = d.layer.open(bdev, false);
    await io.read(hd.getIoChannel(), direct, 100, 64);
    hd.close();
    t.ok(direct.equals(pattern), 'and it is on the exported bdev');

    t.equal(await randomVerified(ch, 16384, 10_000), 0, '10,000 random verified I/Os');
    await io.flush(ch);
    t.pass('flush completed');

    await io.write(ch, Buffer.alloc(64 * 4096, 0xaa), 2048, 64);
    await io.writeZeroes(ch, 2048, 32);
    if (kind.discard) await io.unmap(ch, 2080, 32);
    const z = Buffer.alloc(64 * 4096, 0x55);
    await io.read(ch, z, 2048, 64);
    t.ok(z.every((b) => b === 0), 'write-zeroes and discard read back as zeros');

    const ro = await attach(d, dir, 'vhost.ro', 'VirtioRo');
    const r = Buffer.alloc(64 * 4096);
    const rw = Buffer.alloc(64 * 4096);
    await io.read(ro, r, 2000, 64);
    await io.read(ch, rw, 2000, 64);
    t.ok(r.equals(rw), 'read-only controller reads the same data');
    await t.rejects(io.write(ro, Buffer.alloc(4096), 0, 1), 'read-only controller rejects writes');

    t.match(await d.call('vhost_get_controllers', { name: 'vhost.0' }), [{ sessions: [{ started: true, max_queues: 2 }] }]);
    t.equal(await d.call('bdev_virtio_detach_controller', { name: 'VirtioBlk0' }), true);
    t.equal(await d.call('bdev_virtio_detach_controller', { name: 'VirtioRo' }), true);
  });
}
