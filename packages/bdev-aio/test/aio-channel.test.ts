import { Errno, IoType, allocAligned, checkSubmitBatches, io } from '@blockwork/core';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { aioEnv, rng, statusOf } from './fixtures/aio-env';
import { AioChannel } from '../src/aio-channel';

const MiB = 1 << 20;

t.test('write then read back the same bytes', async (t) => {
  const env = aioEnv(t);
  env.module.create({ name: 'a0', filename: env.file('a.img', MiB), block_size: 4096 });
  const ch = env.layer.open('a0', true).getIoChannel();
  const w = allocAligned(16384, 4096);
  rng(1).fill(w);
  await io.write(ch, w, 10, 4);
  const r = allocAligned(16384, 4096);
  await io.read(ch, r, 10, 4);
  t.ok(Buffer.from(r).equals(w), 'read matches write');
});

t.test('vectored I/O with several buffers, misaligned ones bounced', async (t) => {
  const env = aioEnv(t);
  env.module.create({ name: 'a0', filename: env.file('a.img', MiB), block_size: 4096 });
  const ch = env.layer.open('a0', true).getIoChannel();
  // Aligned list: 3 pieces of 4 KiB each.
  const aligned = [allocAligned(4096), allocAligned(4096), allocAligned(4096)];
  aligned.forEach((b, i) => b.fill(0x10 + i));
  await io.write(ch, aligned, 0, 3);
  // Misaligned addresses and odd lengths (1000 + 3096 + 8192 bytes) must be bounced, not refused.
  const backing = Buffer.alloc(3 * 4096 + 64);
  const mis = [backing.subarray(1, 1001), backing.subarray(1001, 4097), backing.subarray(4097, 4097 + 8192)];
  await io.read(ch, mis, 0, 3);
  const got = Buffer.concat(mis);
  t.ok(got.equals(Buffer.concat(aligned)), 'misaligned read list gets the data');
  const src = Buffer.alloc(8193).subarray(1);
  rng(2).fill(src);
  await io.write(ch, [src.subarray(0, 512), src.subarray(512)], 5, 2);
  const back = allocAligned(8192);
  await io.read(ch, back, 5, 2);
  t.ok(back.equals(src), 'misaligned write list lands on disk');
});

t.test('I/O past the end is rejected with -EINVAL', async (t) => {
  const env = aioEnv(t);
  env.module.create({ name: 'a0', filename: env.file('a.img', MiB), block_size: 4096 });
  const ch = env.layer.open('a0', true).getIoChannel();
  t.equal(await statusOf(io.read(ch, allocAligned(8192), 255, 2)), -Errno.EINVAL);
  t.equal(await statusOf(io.write(ch, allocAligned(4096), 256, 1)), -Errno.EINVAL);
});

t.test('flush succeeds', async (t) => {
  const env = aioEnv(t);
  env.module.create({ name: 'a0', filename: env.file('a.img', MiB) });
  const ch = env.layer.open('a0', true).getIoChannel();
  await io.write(ch, allocAligned(512), 0, 1);
  await t.resolves(io.flush(ch));
});

t.test('unmap and write_zeroes read back zeros (fallocate: true)', async (t) => {
  const env = aioEnv(t);
  env.module.create({ name: 'a0', filename: env.file('a.img', MiB, 0xee), block_size: 4096, fallocate: true });
  const ch = env.layer.open('a0', true).getIoChannel();
  t.ok(ch.bdev.ioTypeSupported(IoType.UNMAP) && ch.bdev.ioTypeSupported(IoType.WRITE_ZEROES), 'both supported on ext4');
  await io.unmap(ch, 4, 8);
  await io.writeZeroes(ch, 20, 3);
  const r = allocAligned(32 * 4096);
  await io.read(ch, r, 0, 32);
  const blk = (i: number) => r.subarray(i * 4096, (i + 1) * 4096);
  t.ok(blk(3).every((b) => b === 0xee) && blk(12).every((b) => b === 0xee), 'neighbours untouched');
  t.ok([4, 5, 11].every((i) => blk(i).every((b) => b === 0)), 'unmapped blocks read zero');
  t.ok([20, 21, 22].every((i) => blk(i).every((b) => b === 0)), 'write_zeroes blocks read zero');
  t.ok(blk(23).every((b) => b === 0xee), 'block after write_zeroes untouched');
});

t.test('without fallocate, unmap is refused with -ENOTSUP', async (t) => {
  const env = aioEnv(t);
  env.module.create({ name: 'a0', filename: env.file('a.img', MiB) });
  const ch = env.layer.open('a0', true).getIoChannel();
  t.equal(await statusOf(io.unmap(ch, 0, 1)), -Errno.ENOTSUP);
});

t.test('reset completes after the I/O before it', async (t) => {
  const env = aioEnv(t);
  env.module.create({ name: 'a0', filename: env.file('a.img', MiB) });
  const ch = env.layer.open('a0', true).getIoChannel();
  const order: string[] = [];
  const w = io.write(ch, allocAligned(65536), 0, 128).then(() => order.push('write'));
  const r = io.reset(ch).then(() => order.push('reset'));
  await Promise.all([w, r]);
  t.same(order, ['write', 'reset']);
});

t.test('deleting the bdev with I/O in flight completes or fails each I/O cleanly', async (t) => {
  const env = aioEnv(t);
  env.module.create({ name: 'a0', filename: env.file('a.img', 4 * MiB), block_size: 4096 });
  const ch = env.layer.open('a0', true).getIoChannel();
  const ios: Promise<void>[] = [];
  for (let i = 0; i < 300; i++) ios.push(i % 2 ? io.write(ch, allocAligned(8192), i * 2, 2) : io.read(ch, allocAligned(8192), i * 2, 2));
  const del = env.module.delete('a0');
  const late = statusOf(io.read(ch, allocAligned(4096), 0, 1));
  const results = await Promise.allSettled(ios);
  await del;
  const bad = results.filter((r) => r.status === 'rejected' && typeof (r.reason as { status?: number }).status !== 'number');
  t.equal(bad.length, 0, 'every I/O resolved or rejected with an errno status');
  t.equal(results.length, 300, 'all 300 I/Os settled');
  t.equal(await late, -Errno.ENODEV, 'I/O after delete fails with -ENODEV');
  t.equal(env.layer.get('a0'), undefined, 'bdev gone');
});

t.test('10,000 random verified I/Os at QD64', async (t) => {
  const env = aioEnv(t);
  const bs = 4096;
  const blocks = 64 * 32;
  env.module.create({ name: 'a0', filename: env.file('a.img', blocks * bs), block_size: bs });
  const ch = env.layer.open('a0', true).getIoChannel();
  const shadow = Buffer.alloc(blocks * bs);
  const r = rng(42);
  let remaining = 10_000;
  let verified = 0;
  let mismatches = 0;
  // Each of the 64 workers owns 32 blocks, so the shadow copy is exact despite concurrency.
  const worker = async (w: number): Promise<void> => {
    while (remaining > 0) {
      remaining--;
      const n = 1 + r.int(8);
      const off = w * 32 + r.int(32 - n + 1);
      // Every 8th I/O uses a misaligned view so bouncing runs under load too.
      const buf = r.int(8) === 0 ? Buffer.alloc(n * bs + 1).subarray(1) : allocAligned(n * bs);
      if (r.int(2) === 0) {
        r.fill(buf);
        await io.write(ch, buf, off, n);
        shadow.set(buf, off * bs);
      } else {
        await io.read(ch, buf, off, n);
        if (!buf.equals(shadow.subarray(off * bs, (off + n) * bs))) mismatches++;
        verified++;
      }
    }
  };
  await Promise.all(Array.from({ length: 64 }, (_, w) => worker(w)));
  t.equal(mismatches, 0, `all ${verified} reads matched the shadow copy`);
  const all = allocAligned(blocks * bs);
  await io.read(ch, all, 0, blocks);
  t.ok(all.equals(shadow), 'final full read matches');
});

t.test('I/Os resubmitted from a batch of completions go to the kernel in calls of at most BLOCKWORK_IO_SUBMIT_BATCH', async (t) => {
  // Buffered reads of cached pages complete inside the submit call, so 32 of them come back as one
  // batch whose callbacks resubmit 32 more (docs/bdev-aio.md "Submission batches").
  const env = aioEnv(t);
  const data = Buffer.alloc(64 * 4096);
  rng(9).fill(data);
  const path = env.file('convoy.img', data.length);
  writeFileSync(path, data);
  const fd = openSync(path, 'r');
  t.teardown(() => closeSync(fd));
  const open = () => new AioChannel({ name: 'convoy', fd, blockSize: 4096, requiredAlignment: 1 });
  await checkSubmitBatches(t, open, data);
});
