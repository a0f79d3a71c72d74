import t from 'tap';
import { fork } from 'node:child_process';
import { openSync, writeSync, closeSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { DirtyBitmap, type BitmapGeometry } from '../src/dirty-bitmap';
import { errorOf, tempDir } from './fixtures/env';

const GEO: BitmapGeometry = {
  granuleBytes: 65536, sourceBytes: 1000 * 65536 + 512,
  sourceName: 'src0', sourceUuid: '11111111-1111-4111-8111-111111111111', targetName: 'tgt0', targetUuid: '22222222-2222-4222-8222-222222222222',
};
const MARKER = join(__dirname, 'fixtures', 'marker.ts');

function child(args: string[]) {
  // Same loader as this test (tap's ts-node), so the child runs the TypeScript source.
  return fork(MARKER, args, { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

t.test('a new bitmap is all dirty, with the header as given', async (t) => {
  const path = join(tempDir(t), 'b.bitmap');
  const bm = DirtyBitmap.create(path, GEO);
  t.teardown(() => bm.close());
  t.equal(bm.granuleCount, 1001, 'a partial last granule counts');
  t.equal(bm.dirtyCount(), 1001);
  t.match(bm.readHeader(), { magic: 'BWDIRTY\0', version: 1, granuleBytes: 65536, sourceBytes: GEO.sourceBytes, generation: 1, state: 'bulk', sourceName: 'src0', targetUuid: GEO.targetUuid });
  t.ok(existsSync(path) && !existsSync(`${path}.${process.pid}.tmp`), 'renamed into place');
  const e = await errorOf(() => DirtyBitmap.create(path, GEO));
  t.equal(e?.code, 'MIGRATION_BITMAP_BUSY', 'an existing file is not overwritten');
});

t.test('clear, set, test, find next, count and byte-range marks', async (t) => {
  const bm = DirtyBitmap.create(join(tempDir(t), 'b.bitmap'), GEO);
  t.teardown(() => bm.close());
  for (let g = 0; g < bm.granuleCount; g++) bm.clear(g);
  t.equal(bm.dirtyCount(), 0);
  t.equal(bm.findNextDirty(0), -1);
  t.equal(bm.clear(5), false, 'test-and-clear of a clean bit');
  t.equal(bm.set(5), false);
  t.equal(bm.set(5), true, 'set returns the previous value');
  t.equal(bm.test(5), true);
  t.equal(bm.findNextDirty(0), 5);
  t.equal(bm.findNextDirty(6), -1);
  t.equal(bm.markBytes(65536 * 63 + 100, 65536 * 2), 3, 'a range spanning 3 granules across a word boundary');
  t.same([bm.test(63), bm.test(64), bm.test(65), bm.test(66)], [true, true, true, false]);
  t.equal(bm.markBytes(1000 * 65536, 512), 1, 'the partial last granule');
  t.equal(bm.findNextDirty(66), 1000);
  t.equal(bm.markBytes(0, 0), 0, 'empty range marks nothing');
  t.equal(bm.dirtyCount(), 5);
  t.throws(() => bm.set(1001), TypeError, 'beyond the last granule');
});

t.test('allMarked reads the mapping: true only when every granule of the byte range is dirty', async (t) => {
  const bm = DirtyBitmap.create(join(tempDir(t), 'v.bitmap'), {
    granuleBytes: 4096, sourceBytes: 4096 * 100, sourceName: 's', sourceUuid: 'u1', targetName: 'd', targetUuid: 'u2',
  });
  t.teardown(() => bm.close());
  t.equal(bm.allMarked(0, 100 * 4096), true, 'a new bitmap is all dirty');
  bm.clear(33);
  bm.clear(64);
  t.equal(bm.allMarked(32 * 4096, 4096), true);
  t.equal(bm.allMarked(33 * 4096, 1), false, 'bit 33: second u32 word of the first u64');
  t.equal(bm.allMarked(32 * 4096, 2 * 4096), false, 'one clear granule in the range');
  t.equal(bm.allMarked(64 * 4096 + 100, 10), false, 'bit 64: the second u64 word');
  bm.markBytes(64 * 4096, 1);
  t.equal(bm.allMarked(64 * 4096, 4096), true, 'a native mark is seen by the plain read');
  t.equal(bm.allMarked(99 * 4096, 2 * 4096), false, 'beyond the last granule');
  t.equal(bm.allMarked(0, 0), false, 'empty range');
  const other = DirtyBitmap.attach(bm.path, undefined, true);
  t.teardown(() => other.close());
  other.set(33);
  t.equal(bm.allMarked(33 * 4096, 4096), true, 'a mark through another mapping of the file is seen');
});

t.test('attach validates and bumps the generation; a mismatch names what differs', async (t) => {
  const path = join(tempDir(t), 'b.bitmap');
  DirtyBitmap.create(path, GEO).close();
  const bm = DirtyBitmap.attach(path, { ...GEO, granuleBytes: 0 });
  t.equal(bm.header.generation, 2);
  bm.close();
  let e = await errorOf(() => DirtyBitmap.attach(path, { ...GEO, targetUuid: '33333333-3333-4333-8333-333333333333' }));
  t.equal(e?.code, 'MIGRATION_BITMAP_MISMATCH');
  t.match(e?.message, /target uuid is "22222222-.*" in the file, "33333333-.*" now/);
  e = await errorOf(() => DirtyBitmap.attach(path, { ...GEO, granuleBytes: 131072 }));
  t.match(e, { code: 'MIGRATION_BITMAP_MISMATCH', message: /granularity_bytes is 65536 in the file, 131072 now/ });
  e = await errorOf(() => DirtyBitmap.attach(path, { ...GEO, sourceName: 'other', sourceBytes: 4096 }));
  t.match(e?.message, /source size \(bytes\) is .*; source_bdev is "src0" in the file, "other" now/);
  t.equal(e?.errno, 22);
});

t.test('a corrupted magic, checksum, short file or missing file fails with a clear error', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'b.bitmap');
  DirtyBitmap.create(path, GEO).close();
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from('XX'), 0, 2, 0);
  closeSync(fd);
  let e = await errorOf(() => DirtyBitmap.attach(path, GEO));
  t.match(e, { code: 'MIGRATION_BITMAP_CORRUPT', message: /bad magic "XXDIRTY\\u0000"/ });
  const p2 = join(dir, 'c.bitmap');
  DirtyBitmap.create(p2, GEO).close();
  const fd2 = openSync(p2, 'r+');
  writeSync(fd2, Buffer.alloc(8, 0xff), 0, 8, 16); // granule size field
  closeSync(fd2);
  e = await errorOf(() => DirtyBitmap.attach(p2, GEO));
  t.match(e, { code: 'MIGRATION_BITMAP_CORRUPT', message: /checksum mismatch/ });
  const p3 = join(dir, 'short.bitmap');
  writeFileSync(p3, Buffer.alloc(100));
  e = await errorOf(() => DirtyBitmap.attach(p3, GEO));
  t.match(e, { code: 'MIGRATION_BITMAP_CORRUPT', message: /100 bytes, smaller than the 4096-byte header/ });
  e = await errorOf(() => DirtyBitmap.attach(join(dir, 'none.bitmap'), GEO));
  t.match(e, { code: 'MIGRATION_BITMAP_IO', errno: 2, message: /open failed/ });
});

t.test('a second exclusive user of the file is refused', async (t) => {
  const path = join(tempDir(t), 'b.bitmap');
  const a = DirtyBitmap.create(path, GEO);
  t.teardown(() => a.close());
  a.lockExclusive();
  const b = DirtyBitmap.attach(path, GEO, true);
  t.teardown(() => b.close());
  const e = await errorOf(() => b.lockExclusive());
  t.match(e, { code: 'MIGRATION_BITMAP_BUSY', errno: 16 });
});

t.test('two processes mark concurrently; every mark lands', async (t) => {
  const path = join(tempDir(t), 'b.bitmap');
  const bm = DirtyBitmap.create(path, { ...GEO, sourceBytes: 65536 * 200000 });
  t.teardown(() => bm.close());
  for (let g = 0; g < bm.granuleCount; g++) bm.clear(g);
  // The child marks odd granules while this process marks even ones: they share every 64-bit word,
  // so a non-atomic read-modify-write on either side would lose the other's bits.
  const c = child([path, 'mark', '1', '2', '100000']);
  const started = new Promise((r) => c.once('spawn', r));
  await started;
  for (let g = 0; g < 200000; g += 2) {
    bm.set(g);
    if (g % 2000 === 0) await new Promise((r) => setImmediate(r));
  }
  const msg = await new Promise((r) => c.once('message', r));
  t.equal(msg, 'done');
  await new Promise((r) => c.once('exit', r));
  t.equal(bm.dirtyCount(), 200000, 'all 200000 bits set: 100000 by each process');
  t.equal(bm.findNextDirty(0), 0);
});

t.test('a holder of the header mutex killed mid-update does not deadlock the next', async (t) => {
  const path = join(tempDir(t), 'b.bitmap');
  DirtyBitmap.create(path, GEO).close();
  const c = child([path, 'hold']);
  const msg = await new Promise((r) => c.once('message', r));
  t.equal(msg, 'locked 0', 'child holds the mutex with a torn generation field');
  const exited = new Promise((r) => c.once('exit', r));
  c.kill('SIGKILL');
  await exited;
  const bm = DirtyBitmap.attach(path, GEO, true);
  t.teardown(() => bm.close());
  t.equal(bm.native.lock(), 1, 'the next locker gets the mutex, recovered from the dead owner');
  t.equal(bm.native.unlock(), 0);
  t.equal(bm.native.lock(), 0, 'consistent again: plain lock');
  bm.native.unlock();
  const again = DirtyBitmap.attach(path, GEO);
  t.teardown(() => again.close());
  t.ok(again.header.generation > 0, 'attach rewrites the torn mutable fields whole');
  t.equal(again.readHeader().generation, again.header.generation);
});
