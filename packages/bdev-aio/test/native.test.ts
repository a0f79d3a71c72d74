import { Errno } from '@blockwork/core';
import t from 'tap';
import { aioNative, isFailure } from '../src/native';
import { aioEnv } from './fixtures/aio-env';

t.test('bad arguments throw TypeError before any work', async (t) => {
  const N = aioNative() as unknown as Record<string, (...a: unknown[]) => unknown>;
  t.throws(() => N.openFile(42, false, true), TypeError);
  t.throws(() => N.fileInfo('x'), TypeError);
  t.throws(() => N.runBlocking(1, [], [], [], [], [], null), TypeError);
  const Ctx = aioNative().AioContext as unknown as new (...a: unknown[]) => unknown;
  t.throws(() => new Ctx(0, {}, {}, () => {}), TypeError);
});

t.test('failed syscalls come back as errno + syscall name', async (t) => {
  const r = aioNative().openFile('/nonexistent/blockwork-aio', true, false);
  t.ok(isFailure(r));
  t.same(r, { errno: Errno.ENOENT, syscall: 'open' });
});

t.test('fileInfo reports a regular file with its size and dio alignment', async (t) => {
  const env = aioEnv(t);
  const N = aioNative();
  const fd = N.openFile(env.file('f.img', 12288), true, true);
  if (isFailure(fd)) throw new Error(`open failed: ${fd.errno}`);
  const info = N.fileInfo(fd);
  N.closeFile(fd);
  if (isFailure(info)) throw new Error('fileInfo failed');
  t.equal(info.kind, 'file');
  t.equal(info.size, 12288);
  t.ok(info.dioOffsetAlign === 0 || info.dioOffsetAlign >= 512, 'dio offset alignment unknown or a sector multiple');
});

t.test('a context reaps through the user-space completion ring and can be destroyed twice', async (t) => {
  const N = aioNative();
  const ctx = new N.AioContext(
    8,
    { ops: new Uint8Array(8), fds: new Int32Array(8), offsets: new Float64Array(8), slots: new Uint32Array(8) },
    { slots: new Uint32Array(8), results: new Float64Array(8) },
    () => {},
  );
  t.equal(ctx.usesRing, true, 'ring layout recognised on this kernel');
  t.equal(ctx.inflight, 0);
  ctx.destroy();
  ctx.destroy();
  t.throws(() => ctx.submit(0, 0, []), TypeError, 'submit after destroy is refused');
});
