import t from 'tap';
import { closeSync, constants, existsSync, mkdtempSync, openSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '@blockwork/core';
import { assertUringUsable, diagnoseUring, openBackingFile } from '../src/uring-file';
import { makeFile, tempDir } from './fixtures/env';

const log = createLogger('silent');

t.test('diagnoseUring names the cause', async (t) => {
  t.equal(diagnoseUring('0\n', null), null);
  t.equal(diagnoseUring(null, null), null, 'kernels without the sysctl');
  const two = diagnoseUring('2\n', null);
  t.equal(two?.code, 'URING_DISABLED');
  t.equal(two?.message, 'io_uring is disabled by kernel.io_uring_disabled=2');
  const one = diagnoseUring('1', { errno: 1, syscall: 'io_uring_setup' });
  t.equal(one?.code, 'URING_DISABLED');
  t.match(one?.message, 'kernel.io_uring_disabled=1');
  const seccomp = diagnoseUring('0', { errno: 1, syscall: 'io_uring_setup' });
  t.equal(seccomp?.code, 'URING_UNAVAILABLE');
  t.equal(seccomp?.message, 'io_uring_setup failed: Operation not permitted (seccomp?)');
  t.equal(seccomp?.errno, 1);
  const nosys = diagnoseUring(null, { errno: 38, syscall: 'io_uring_setup' });
  t.equal(nosys?.errno, 38);
  t.match(nosys?.message, 'Function not implemented');
});

t.test('io_uring is usable on this machine', async (t) => {
  t.doesNotThrow(() => assertUringUsable());
});

t.test('regular files default to 512-byte blocks, O_DIRECT', async (t) => {
  const f = openBackingFile(makeFile(tempDir(t), 'a.img', 10000), undefined, log);
  t.teardown(() => closeSync(f.fd));
  t.match(f, { kind: 'file', direct: true, blockSize: 512, sizeBytes: 10000 });
  t.ok(f.requiredAlignment >= 1 && f.requiredAlignment <= 512, 'alignment from STATX_DIOALIGN or the block size');
});

t.test('block_size is validated', async (t) => {
  const dir = tempDir(t);
  const file = makeFile(dir, 'a.img', 65536);
  t.throws(() => openBackingFile(file, 1000, log), { code: 'URING_BLOCK_SIZE' });
  t.throws(() => openBackingFile(file, 1536, log), { code: 'URING_BLOCK_SIZE' }, 'not a power of two');
  t.throws(() => openBackingFile(makeFile(dir, 'tiny.img', 100), undefined, log), { code: 'URING_FILE_TOO_SMALL' });
});

/** Whether /dev/shm (tmpfs) refuses O_DIRECT: true before Linux 6.6, false after (tmpfs gained it). */
function shmRefusesDirect(): boolean {
  if (!existsSync('/dev/shm')) return false;
  const p = join('/dev/shm', `bw-uring-probe-${process.pid}`);
  writeFileSync(p, '');
  try {
    closeSync(openSync(p, constants.O_RDWR | constants.O_DIRECT));
    return false;
  } catch {
    return true;
  } finally {
    unlinkSync(p);
  }
}

t.test('a filesystem without O_DIRECT falls back to buffered I/O',
  { skip: shmRefusesDirect() ? false : 'needs a filesystem that refuses O_DIRECT (tmpfs before Linux 6.6)' }, async (t) => {
  const dir = mkdtempSync(join('/dev/shm', 'bw-uring-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = openBackingFile(makeFile(dir, 'a.img', 65536), undefined, log);
  t.teardown(() => closeSync(f.fd));
  t.equal(f.direct, false);
  t.equal(f.requiredAlignment, 1, 'buffered I/O needs no alignment');
});
