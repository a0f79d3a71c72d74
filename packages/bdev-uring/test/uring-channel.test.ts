import { closeSync, openSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { allocAligned, checkSubmitBatches, io, type IoChannel } from '@blockwork/core';
import { makeFile, setup, tempDir } from './fixtures/env';
import { UringChannel } from '../src/uring-channel';

const BS = 512;

async function open(tt: { teardown(fn: () => unknown): void }, blocks = 2048): Promise<IoChannel> {
  const { layer, call } = setup(tt);
  const file = makeFile(tempDir(tt), 'disk.img', blocks * BS);
  await call('bdev_uring_create', { filename: file, name: 'u0' });
  const desc = layer.open('u0', true);
  tt.teardown(() => desc.close());
  return desc.getIoChannel();
}

/** The I/O status a promise-based I/O settled with (0 on success). */
function statusOf(p: Promise<void>): Promise<number> {
  return p.then(() => 0, (e: { status: number }) => e.status);
}

function pattern(len: number, seed: number): Buffer {
  const b = allocAligned(len, 4096);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

t.test('write then read back', async (t) => {
  const ch = await open(t);
  const w = pattern(8 * BS, 7);
  await io.write(ch, w, 16, 8);
  const r = allocAligned(8 * BS, 4096);
  await io.read(ch, r, 16, 8);
  t.ok(r.equals(w), 'read returns what was written');
});

t.test('vectored I/O with aligned and misaligned buffers (bounced)', async (t) => {
  const ch = await open(t);
  const w = pattern(4 * BS, 3);
  const odd = Buffer.alloc(BS + 1).subarray(1); // address not 512-aligned
  w.copy(odd, 0, BS, 2 * BS);
  const iovs = [w.subarray(0, BS), odd, w.subarray(2 * BS, 3 * BS), Buffer.from(w.subarray(3 * BS))];
  await io.write(ch, iovs, 100, 4);
  const r1 = allocAligned(2 * BS, 4096);
  const r2 = Buffer.alloc(2 * BS + 3).subarray(3);
  await io.read(ch, [r1, r2], 100, 4);
  t.ok(Buffer.concat([r1, r2]).equals(w), 'vectored read matches vectored write');
  const small = [Buffer.alloc(100), Buffer.alloc(BS - 100)]; // lengths not multiples of the alignment
  await io.read(ch, small, 100, 1);
  t.ok(Buffer.concat(small).equals(w.subarray(0, BS)), 'odd-length buffers are bounced too');
});

t.test('I/O past the end fails with -EINVAL', async (t) => {
  const ch = await open(t, 64);
  t.equal(await statusOf(io.read(ch, allocAligned(2 * BS), 63, 2)), -22, 'read crossing the end');
  t.equal(await statusOf(io.write(ch, allocAligned(BS), 64, 1)), -22, 'write starting at the end');
});

t.test('flush succeeds', async (t) => {
  const ch = await open(t);
  await io.write(ch, pattern(BS, 1), 0, 1);
  await t.resolves(io.flush(ch));
});

t.test('unmap and write_zeroes read back zeros', async (t) => {
  const ch = await open(t);
  const w = pattern(64 * BS, 9);
  await io.write(ch, w, 0, 64);
  await io.unmap(ch, 8, 8);
  await io.writeZeroes(ch, 32, 8);
  const r = allocAligned(64 * BS);
  await io.read(ch, r, 0, 64);
  const zero = Buffer.alloc(8 * BS);
  t.ok(r.subarray(8 * BS, 16 * BS).equals(zero), 'unmapped range reads zeros');
  t.ok(r.subarray(32 * BS, 40 * BS).equals(zero), 'write_zeroes range reads zeros');
  t.ok(r.subarray(0, 8 * BS).equals(w.subarray(0, 8 * BS)), 'data before is intact');
  t.ok(r.subarray(16 * BS, 32 * BS).equals(w.subarray(16 * BS, 32 * BS)), 'data between is intact');
});

t.test('more I/Os in one turn than ring slots all complete', async (t) => {
  const ch = await open(t);
  const bufs = Array.from({ length: 1000 }, (_, i) => pattern(BS, i));
  await Promise.all(bufs.map((b, i) => io.write(ch, b, i, 1)));
  const back = Array.from({ length: 1000 }, () => allocAligned(BS));
  await Promise.all(back.map((b, i) => io.read(ch, b, i, 1)));
  t.ok(back.every((b, i) => b.equals(bufs[i])), '1000 single-block I/Os verified');
});

t.test('10,000 random verified I/Os at QD64', async (t) => {
  const BLOCKS = 4096;
  const ch = await open(t, BLOCKS);
  const shadow = Buffer.alloc(BLOCKS * BS);
  const TOTAL = 10000;
  const QD = 64;
  let issued = 0;
  let completed = 0;
  let mismatches = 0;
  let failures = 0;
  let rng = 12345;
  const rand = (n: number) => {
    rng = (rng * 1103515245 + 12345) & 0x7fffffff;
    return rng % n;
  };
  // Each in-flight I/O owns a disjoint range so the shadow copy stays exact.
  const busy = new Uint8Array(BLOCKS);
  await new Promise<void>((resolve) => {
    const issue = (): void => {
      if (issued >= TOTAL) return;
      const n = 1 + rand(16);
      let off = rand(BLOCKS - n);
      for (let tries = 0; busy.subarray(off, off + n).some((x) => x) && tries < 64; tries++) off = rand(BLOCKS - n);
      if (busy.subarray(off, off + n).some((x) => x)) { setImmediate(issue); return; }
      busy.fill(1, off, off + n);
      issued++;
      const write = rand(2) === 0;
      const misaligned = rand(8) === 0;
      const buf = misaligned ? Buffer.alloc(n * BS + 1).subarray(1) : allocAligned(n * BS);
      if (write) for (let i = 0; i < buf.length; i += 64) buf[i] = rand(256);
      const cb = (status: number): void => {
        if (status !== 0) failures++;
        else if (write) buf.copy(shadow, off * BS);
        else if (!buf.equals(shadow.subarray(off * BS, (off + n) * BS))) mismatches++;
        busy.fill(0, off, off + n);
        if (++completed === TOTAL) resolve();
        else issue();
      };
      if (write) ch.write([buf], off, n, cb);
      else ch.read([buf], off, n, cb);
    };
    for (let i = 0; i < QD; i++) issue();
  });
  t.equal(completed, TOTAL, 'every I/O completed');
  t.equal(failures, 0, 'no I/O failed');
  t.equal(mismatches, 0, 'every read matched the shadow copy');
});

t.test('I/Os resubmitted from a batch of completions go to the kernel in calls of at most BLOCKWORK_IO_SUBMIT_BATCH', async (t) => {
  // Buffered reads of cached pages complete inside the submit call, so 32 of them come back as one
  // batch whose callbacks resubmit 32 more (docs/bdev-uring.md "Submission batches").
  const data = pattern(64 * 4096, 9);
  const path = makeFile(tempDir(t), 'convoy.img', data.length);
  writeFileSync(path, data);
  const fd = openSync(path, 'r');
  t.teardown(() => closeSync(fd));
  const open = () => new UringChannel({
    name: 'convoy', fd, blockSize: 4096, requiredAlignment: 1, zeroRangeUnsupported: false, onZeroRangeUnsupported: () => {},
  });
  await checkSubmitBatches(t, open, data);
});
