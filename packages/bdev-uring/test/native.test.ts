import t from 'tap';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { allocAligned } from '@blockwork/core';
import { release } from 'node:os';
import { isSyscallFailure, RingOp, type UringRing, uringNative } from '../src/native';
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
  // An fsync takes tens of ms on a busy disk: wait for the callback (bounded) instead of a fixed sleep.
  for (let waited = 0; calls === 0 && waited < 5000; waited += 10) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 20));
  t.equal(calls, 1, 'one completion callback');
  t.equal(ring.inflight, 0);
});

t.test('rings use DEFER_TASKRUN where the kernel has it, and plain on request', async (t) => {
  const n = uringNative();
  const fd = openSync(makeFile(tempDir(t), 'a.img', 65536), 'r+');
  const best = new n.UringRing(fd, 8, new Uint32Array(16), new Int32Array(16), () => {});
  const plain = new n.UringRing(fd, 8, new Uint32Array(16), new Int32Array(16), () => {}, { plain: true });
  t.teardown(() => { best.close(); plain.close(); closeSync(fd); });
  const [maj, min] = release().split('.').map(Number);
  t.equal(best.mode, maj > 6 || (maj === 6 && min >= 1) ? 'defer' : 'plain', `kernel ${release()}`);
  t.equal(plain.mode, 'plain');
});

t.test('spinning at QD1 reaps completions without epoll and delivers the right data, in both modes', async (t) => {
  const path = makeFile(tempDir(t), 's.img', 16 * 4096);
  const wfd = openSync(path, 'r+');
  for (let i = 0; i < 16; i++) writeSync(wfd, Buffer.alloc(4096, i + 1), 0, 4096, i * 4096);
  closeSync(wfd);
  // O_DIRECT: completions come from the device interrupt, not inline from the page cache.
  const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECT);
  t.teardown(() => closeSync(fd));
  for (const opts of [{ spinUs: 200, spinMaxInflight: 4 }, { spinUs: 200, spinMaxInflight: 4, plain: true }, { spinUs: 0 }]) {
    const ids = new Uint32Array(8);
    const results = new Int32Array(8);
    const buf = allocAligned(4096, 4096);
    const seen: number[] = [];
    let bad = 0;
    let ring!: UringRing;
    const desc = new Float64Array(6);
    const submit = (k: number): void => {
      desc.set([RingOp.READ, 0, (k % 16) * 4096, 4096, 0, 1]);
      if (ring.submit(1, desc, [buf]) !== 1) bad++;
    };
    // On a loaded machine (CI runs QEMU guests beside this) spinning can miss or be suspended for
    // a whole chain of 64; chains continue, bounded, until a spin has hit.
    const spinHit = (): boolean => opts.spinUs === 0 || ring.spinStats.hits > 0;
    let chainEnd: () => void = () => {};
    ring = new (uringNative().UringRing)(fd, 8, ids, results, (n: number) => {
      if (n !== 1 || results[0] !== 4096) bad++;
      seen.push(buf[0]);
      if (seen.length % 64 === 0) chainEnd();
      else submit(seen.length);
    }, opts);
    for (let round = 0; round === 0 || (!spinHit() && round < 20); round++) {
      if (round > 0) await new Promise((r) => setTimeout(r, 110)); // past a contention pause
      await new Promise<void>((resolve) => {
        chainEnd = resolve;
        submit(seen.length);
      });
    }
    const stats = ring!.spinStats;
    ring!.close();
    const what = JSON.stringify(opts);
    t.equal(bad, 0, `one full 4 KiB completion per callback ${what}`);
    t.same(seen, Array.from({ length: seen.length }, (_, i) => (i % 16) + 1), `each read returns its block ${what}`);
    if (opts.spinUs > 0) t.ok(stats.hits > 0, `spins saw completions (${stats.hits} hits, ${stats.misses} misses) ${what}`);
    else t.same(stats, { hits: 0, misses: 0, contended: 0 }, 'spinUs 0 never spins');
  }
});
