import t from 'tap';
import { createHash } from 'node:crypto';
import { openSync, readSync, closeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Daemon, io } from '@blockwork/core';
import { requireGuestTools, runGuest } from '@blockwork/guest-vm';
import { startDaemon, tempDir } from './fixtures/daemon';

/**
 * One real QEMU guest per bdev kind (boots cost 20–25 s under TCG, so every check is batched into
 * one script): vda is a read-write controller with 2 queues, vdb a read-only controller on the
 * same bdev. After power-off the host reads the bytes back from the bdev or its file.
 */
const PATTERN_OFFSET = 16 * 4096;
const PATTERN_BYTES = 64 * 4096;

const SCRIPT = `
echo "geom $(cat /sys/block/vda/size) $(cat /sys/block/vda/queue/logical_block_size) $(ls /sys/block/vda/mq | wc -l) $(cat /sys/block/vdb/ro)"
dd if=/dev/urandom of=/tmp/pat bs=4096 count=64 status=none
dd if=/tmp/pat of=/dev/vda bs=4096 seek=16 oflag=direct conv=fsync status=none && echo write-ok
dd if=/dev/vda of=/tmp/back bs=4096 skip=16 count=64 iflag=direct status=none
cmp /tmp/pat /tmp/back && echo pattern-ok
echo "md5 $(md5sum /tmp/pat | cut -d' ' -f1)"
if fio --name=v --filename=/dev/vda --rw=randwrite --bs=4k --offset=1M --size=2M --offset_increment=2M --numjobs=2 \\
   --cpus_allowed=0-1 --cpus_allowed_policy=split --iodepth=16 --ioengine=libaio --direct=1 --verify=crc32c \\
   --do_verify=1 --verify_fatal=1 --group_reporting >/tmp/fio.out 2>&1; then echo fio-ok; else cat /tmp/fio.out; fi
dd if=/dev/urandom of=/dev/vda bs=4096 seek=2048 count=256 oflag=direct status=none
blkdiscard -o 8388608 -l 1048576 /dev/vda && echo discard-ok
echo "nonzero $(dd if=/dev/vda bs=4096 skip=2048 count=256 iflag=direct status=none | tr -d '\\000' | wc -c)"
sync && blockdev --flushbufs /dev/vda && echo flush-ok
if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 oflag=direct status=none 2>/dev/null; then echo ro-WROTE; else echo ro-rejected; fi
dd if=/dev/vdb of=/tmp/ro bs=4096 skip=16 count=64 iflag=direct status=none
cmp /tmp/pat /tmp/ro && echo ro-read-ok
`;

interface Kind {
  name: string;
  plugins: string[];
  create(d: Daemon, dir: string): Promise<{ bdev: string; file?: string; blockSize: number }>;
}

const KINDS: Kind[] = [
  {
    name: 'malloc',
    plugins: ['@blockwork/vhost-blk'],
    async create(d) {
      await d.call('bdev_malloc_create', { name: 'Malloc0', num_blocks: 131072, block_size: 512 });
      return { bdev: 'Malloc0', blockSize: 512 };
    },
  },
  {
    name: 'aio (4 KiB blocks, fallocate)',
    plugins: ['@blockwork/bdev-aio', '@blockwork/vhost-blk'],
    async create(d, dir) {
      const file = join(dir, 'aio.img');
      writeFileSync(file, Buffer.alloc(64 << 20));
      await d.call('bdev_aio_create', { name: 'aio0', filename: file, block_size: 4096, fallocate: true });
      return { bdev: 'aio0', file, blockSize: 4096 };
    },
  },
  {
    name: 'uring',
    plugins: ['@blockwork/bdev-uring', '@blockwork/vhost-blk'],
    async create(d, dir) {
      const file = join(dir, 'uring.img');
      writeFileSync(file, Buffer.alloc(64 << 20));
      await d.call('bdev_uring_create', { name: 'uring0', filename: file });
      return { bdev: 'uring0', file, blockSize: 512 };
    },
  },
];

function md5(b: Uint8Array): string {
  return createHash('md5').update(b).digest('hex');
}

async function hostBytes(d: Daemon, bdev: string, file: string | undefined, blockSize: number): Promise<Buffer> {
  const buf = Buffer.alloc(PATTERN_BYTES);
  if (file) {
    const fd = openSync(file, 'r');
    readSync(fd, buf, 0, PATTERN_BYTES, PATTERN_OFFSET);
    closeSync(fd);
    return buf;
  }
  const desc = d.layer.open(bdev, false);
  try {
    await io.read(desc.getIoChannel(), buf, PATTERN_OFFSET / blockSize, PATTERN_BYTES / blockSize);
  } finally {
    desc.close();
  }
  return buf;
}

for (const kind of KINDS) {
  t.test(`a QEMU guest on a ${kind.name} bdev`, async (t) => {
    if (!requireGuestTools(t)) return;
    const dir = tempDir(t);
    const { d } = await startDaemon(t, { dir, plugins: kind.plugins });
    const { bdev, file, blockSize } = await kind.create(d, dir);
    await d.call('vhost_create_blk_controller', { ctrlr: 'vhost.0', dev_name: bdev });
    await d.call('vhost_create_blk_controller', { ctrlr: 'vhost.ro', dev_name: bdev, readonly: true });
    const r = await runGuest({
      script: SCRIPT,
      vhostUserBlk: [{ socket: join(dir, 'vhost.0'), numQueues: 2 }, { socket: join(dir, 'vhost.ro'), numQueues: 1 }],
      timeoutMs: 280_000,
    });
    t.equal(r.exitCode, 0, 'guest script ran');
    const out = r.output;
    t.match(out, new RegExp(`^geom 131072 ${blockSize} 2 1$`, 'm'), 'capacity, block size, 2 queues, vdb read-only');
    for (const marker of ['write-ok', 'pattern-ok', 'fio-ok', 'discard-ok', 'flush-ok', 'ro-rejected', 'ro-read-ok']) {
      t.match(out, new RegExp(`^${marker}$`, 'm'), marker);
    }
    t.match(out, /^nonzero 0$/m, 'discarded range reads back as zeros');
    const guestMd5 = /^md5 ([0-9a-f]{32})$/m.exec(out)?.[1];
    t.equal(md5(await hostBytes(d, bdev, file, blockSize)), guestMd5, 'the host sees what the guest wrote');
    if (!/fio-ok/.test(out) || r.exitCode !== 0) t.comment(out + '\n' + r.console.slice(-4000));
    t.match(await d.call('vhost_get_controllers', { name: 'vhost.0' }), [{ sessions: [] }], 'session gone after power-off');
  });
}
