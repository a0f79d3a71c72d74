import t from 'tap';
import { join } from 'node:path';
import { type BdevChannel, type BdevIo, type DriverDone, IoType } from '@blockwork/core';
import { DirtyBitmap } from '../src/dirty-bitmap';
import { WriteTracker } from '../src/write-tracker';
import { tempDir } from './fixtures/env';

function fixture(t: Parameters<typeof tempDir>[0]) {
  const bm = DirtyBitmap.create(join(tempDir(t), 'b.bitmap'), {
    granuleBytes: 4096, sourceBytes: 4096 * 64, sourceName: 's', sourceUuid: 'u1', targetName: 'd', targetUuid: 'u2',
  });
  t.teardown(() => bm.close());
  for (let g = 0; g < 64; g++) bm.clear(g);
  const seen: Array<{ io: BdevIo; done: DriverDone; dirtyAtSubmit: boolean }> = [];
  const next: BdevChannel = { submit: (io, done) => seen.push({ io, done, dirtyAtSubmit: bm.test(io.offsetBlocks / 8) }), close: () => {} };
  let marks = 0;
  const tracker = new WriteTracker(bm, 512, () => { marks++; });
  const mkIo = (type: IoType, offsetBlocks: number, numBlocks: number): BdevIo => ({ type, offsetBlocks, numBlocks, iovs: [], driverCtx: undefined });
  return { bm, seen, next, tracker, mkIo, marks: () => marks };
}

t.test('write, unmap and write_zeroes mark their granules before reaching the driver; reads pass untouched', async (t) => {
  const { bm, seen, next, tracker, mkIo } = fixture(t);
  const done: DriverDone = () => {};
  tracker.submit(mkIo(IoType.READ, 0, 8), done, next);
  t.equal(bm.dirtyCount(), 0, 'a read marks nothing');
  t.equal(seen[0].done, done, 'a read keeps its completion');
  tracker.submit(mkIo(IoType.WRITE, 8, 16), done, next);
  tracker.submit(mkIo(IoType.UNMAP, 40, 1), done, next);
  tracker.submit(mkIo(IoType.WRITE_ZEROES, 63 * 8, 8), done, next);
  t.same(seen.slice(1).map((s) => s.dirtyAtSubmit), [true, true, true], 'dirty when the driver sees it');
  t.same([bm.test(1), bm.test(2), bm.test(3), bm.test(5), bm.test(63)], [true, true, false, true, true]);
  t.equal(tracker.inflightWrites, 3);
});

t.test('a write completing after the mirror cleared its bit marks it again', async (t) => {
  const { bm, seen, next, tracker, mkIo } = fixture(t);
  let completed = 0;
  tracker.submit(mkIo(IoType.WRITE, 16, 8), () => { completed++; }, next);
  bm.clear(2);
  seen[0].done(seen[0].io, 0);
  t.equal(bm.test(2), true);
  t.equal(completed, 1);
  t.equal(tracker.inflightWrites, 0);
});

t.test('a write to granules already dirty makes no native mark; a clean granule is marked once at submit', async (t) => {
  const { bm, seen, next, tracker, mkIo, marks } = fixture(t);
  bm.set(4);
  tracker.submit(mkIo(IoType.WRITE, 32, 8), () => {}, next);
  seen[0].done(seen[0].io, 0);
  t.equal(marks(), 0, 'bit already set at submit and at completion: no mark');
  tracker.submit(mkIo(IoType.WRITE, 40, 16), () => {}, next);
  t.equal(marks(), 1, 'clean granules 5 and 6 marked at submit');
  t.same([bm.test(5), bm.test(6)], [true, true]);
  seen[1].done(seen[1].io, 0);
  t.equal(marks(), 1, 'still set at completion: no second mark');
  tracker.submit(mkIo(IoType.WRITE, 56, 16), () => {}, next);
  t.equal(marks(), 2, 'a write spanning a dirty and a clean granule is marked');
  t.same([bm.test(7), bm.test(8)], [true, true]);
});

t.test('a write in flight while the mirror clears and re-copies its granule, then another write re-dirties it, ends dirty', async (t) => {
  const { bm, seen, next, tracker, mkIo } = fixture(t);
  tracker.submit(mkIo(IoType.WRITE, 80, 8), () => {}, next);
  t.equal(bm.clearForCopy(10, 0), true, 'the mirror takes granule 10');
  tracker.submit(mkIo(IoType.WRITE, 80, 8), () => {}, next);
  bm.copied(0);
  t.equal(bm.clear(10), true, 'the mirror takes it again before the first write completes');
  seen[0].done(seen[0].io, 0);
  t.equal(bm.test(10), true, 'the completion of the first write marks it: the next copy reads its data');
  seen[1].done(seen[1].io, 0);
  t.equal(bm.test(10), true);
});

t.test('after the bitmap is closed the fast path reads nothing and marks nothing, without crashing', async (t) => {
  const { bm, tracker, mkIo, marks } = fixture(t);
  bm.set(1);
  bm.close();
  t.equal(bm.allMarked(4096, 4096), false, 'the view is detached');
  let passed = 0;
  tracker.submit(mkIo(IoType.WRITE, 8, 8), () => {}, { submit: () => { passed++; }, close: () => {} });
  t.equal(passed, 1, 'the write still passes');
  t.equal(marks(), 1, 'the native mark is a no-op on a closed map');
});

t.test('hold queues writes (still marked), drained waits for those in flight, release passes the queue on in order', async (t) => {
  const { bm, seen, next, tracker, mkIo, marks } = fixture(t);
  tracker.submit(mkIo(IoType.WRITE, 0, 8), () => {}, next);
  tracker.hold();
  tracker.submit(mkIo(IoType.WRITE, 8, 8), () => {}, next);
  tracker.submit(mkIo(IoType.WRITE, 24, 8), () => {}, next);
  t.equal(tracker.heldCount, 2);
  t.equal(seen.length, 1, 'held writes did not reach the driver');
  t.ok(bm.test(1) && bm.test(3), 'held writes are marked');
  t.ok(marks() >= 3);
  let drained = false;
  const d = tracker.drained().then(() => { drained = true; });
  await new Promise((r) => setImmediate(r));
  t.equal(drained, false);
  seen[0].done(seen[0].io, 0);
  await d;
  t.equal(drained, true);
  tracker.release('track');
  t.same(seen.slice(1).map((s) => s.io.offsetBlocks), [8, 24]);
  t.equal(tracker.heldCount, 0);
});

t.test('through mode sends each write to the target too and completes after both', async (t) => {
  const { bm, next, seen, mkIo } = fixture(t);
  const mirrored: Array<(s: number) => void> = [];
  const tracker = new WriteTracker(bm, 512, () => {}, (_io, cb) => mirrored.push(cb));
  tracker.release('through');
  const statuses: number[] = [];
  tracker.submit(mkIo(IoType.WRITE, 0, 8), (_io, s) => statuses.push(s), next);
  t.equal(mirrored.length, 1);
  seen[0].done(seen[0].io, 0);
  t.same(statuses, [], 'waits for the target');
  mirrored[0](-5);
  t.same(statuses, [-5], 'the first failure is reported');
});
