import { closeSync, openSync, readFileSync } from 'node:fs';
import { type BdevIo, Errno, IoType } from '@blockwork/core';
import t from 'tap';
import { BLOCKING_BATCH, BlockingQueue } from '../src/blocking-queue';
import { aioEnv } from './fixtures/aio-env';

function mkIo(type: IoType, offsetBlocks: number, numBlocks: number): BdevIo {
  return { type, offsetBlocks, numBlocks, iovs: [], driverCtx: undefined };
}

/** Runs `ios` through a queue on `fd` and resolves with each I/O's status, in completion order. */
function run(fd: number, ios: BdevIo[]): Promise<number[]> {
  return new Promise((resolve) => {
    const statuses: number[] = [];
    const owner = {
      target: { fd, blockSize: 4096 },
      schedule: () => queueMicrotask(() => q.start()),
      checkIdle: () => {
        if (q.busy === 0) resolve(statuses);
      },
    };
    const q = new BlockingQueue(owner);
    for (const io of ios) q.push(io, (_io, status) => statuses.push(status));
  });
}

t.test('more than one batch of unmap/write_zeroes/fdatasync completes, zeros on disk', async (t) => {
  const env = aioEnv(t);
  const path = env.file('q.img', 256 * 4096, 0xcc);
  const fd = openSync(path, 'r+');
  t.teardown(() => closeSync(fd));
  const ios: BdevIo[] = [];
  for (let i = 0; i < BLOCKING_BATCH + 10; i++) ios.push(mkIo(i % 2 ? IoType.UNMAP : IoType.WRITE_ZEROES, i * 2, 1));
  ios.push(mkIo(IoType.FLUSH, 0, 0));
  const statuses = await run(fd, ios);
  t.equal(statuses.length, ios.length, 'every op completed once');
  t.ok(statuses.every((s) => s === 0), 'all succeeded');
  const data = readFileSync(path);
  const blk = (i: number) => data.subarray(i * 4096, (i + 1) * 4096);
  t.ok(blk(0).every((b) => b === 0) && blk(2 * (BLOCKING_BATCH + 9)).every((b) => b === 0), 'first and last range zeroed');
  t.ok(blk(1).every((b) => b === 0xcc), 'blocks between untouched');
});

t.test('a failing syscall completes with -errno', async (t) => {
  t.same(await run(1_000_000, [mkIo(IoType.UNMAP, 0, 1)]), [-Errno.EBADF]);
});
