import t from 'tap';
import { closeSync, openSync } from 'node:fs';
import { isSyscallFailure, uringNative } from '../src/native';
import { makeFile, tempDir } from './fixtures/env';

t.test('probe reports io_uring usable here', async (t) => {
  t.equal(uringNative().probe(), null);
});

t.test('fileInfo describes a regular file', async (t) => {
  const fd = openSync(makeFile(tempDir(t), 'a.img', 65536), 'r+');
  t.teardown(() => closeSync(fd));
  const info = uringNative().fileInfo(fd);
  t.notOk(isSyscallFailure(info));
  t.match(info, { kind: 'file', size: 65536, logicalBlockSize: 0 });
});

t.test('fileInfo reports a failed syscall as errno and name', async (t) => {
  t.same(uringNative().fileInfo(1 << 20), { errno: 9, syscall: 'fstat' });
});

t.test('bad arguments throw TypeError before any work', async (t) => {
  const n = uringNative();
  t.throws(() => (n.fileInfo as (x: unknown) => unknown)('x'), TypeError);
  const Ring = n.UringRing as unknown as new (...a: unknown[]) => unknown;
  t.throws(() => new Ring(0, 8, new Uint32Array(4), new Uint32Array(4), () => {}), TypeError, 'results must be Int32Array');
  t.throws(() => new Ring(0, 8, new Uint32Array(4), new Int32Array(4)), TypeError, 'callback missing');
});

t.test('a ring rejects malformed batches with TypeError and stays usable', async (t) => {
  const n = uringNative();
  const fd = openSync(makeFile(tempDir(t), 'a.img', 65536), 'r+');
  let calls = 0;
  const ring = new n.UringRing(fd, 8, new Uint32Array(16), new Int32Array(16), () => { calls++; });
  t.teardown(() => { ring.close(); closeSync(fd); });
  t.equal(ring.sqEntries, 8);
  const sub = ring.submit as (...a: unknown[]) => number;
  t.throws(() => sub.call(ring, 1, new Uint8Array(6), []), TypeError, 'desc must be Float64Array');
  t.throws(() => ring.submit(2, new Float64Array(6), []), TypeError, 'count beyond desc');
  t.throws(() => ring.submit(1, Float64Array.from([0, 99, 0, 512, 0, 1]), [new Uint8Array(512)]), TypeError, 'slot out of range');
  t.throws(() => ring.submit(1, Float64Array.from([0, 0, 0, 512, 0, 1]), [[1, 2] as unknown as Uint8Array]), TypeError, 'buffer not a Uint8Array');
  t.equal(ring.inflight, 0, 'nothing was queued');
  t.equal(ring.submit(1, Float64Array.from([2, 0, 0, 0, 0, 0]), []), 1, 'an fsync is accepted');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(calls, 1, 'one completion callback');
  t.equal(ring.inflight, 0);
});
