import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Errno, IoType } from '@blockwork/core';
import t from 'tap';
import { aioEnv } from './fixtures/aio-env';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

t.test('a regular file: O_DIRECT, 512-byte default blocks, random v4 uuid as alias', async (t) => {
  const env = aioEnv(t);
  env.module.create({ name: 'a0', filename: env.file('a.img', 1 << 20) });
  const b = env.module.list()[0];
  t.equal(b.productName, 'AIO disk');
  t.equal(b.direct, true);
  t.equal(b.blockSize, 512);
  t.equal(b.numBlocks, 2048);
  t.equal(b.requiredAlignment, 512);
  t.match(b.uuid, UUID_V4);
  t.same(b.aliases, [b.uuid]);
});

t.test('driverSpecific and configEntry follow SPDK', async (t) => {
  const env = aioEnv(t);
  const filename = env.file('a.img', 1 << 20);
  const uuid = 'e6d427da-b069-4ad2-93d6-0f4ce512bd14';
  env.module.create({ name: 'a0', filename, block_size: 4096, fallocate: true, uuid });
  const b = env.module.list()[0];
  t.same(b.driverSpecific(), { aio: { filename, block_size_override: true, readonly: false, fallocate: true, nowait: false } });
  t.same(b.configEntry(), {
    method: 'bdev_aio_create',
    params: { name: 'a0', filename, block_size: 4096, readonly: false, fallocate: true, uuid },
  });
});

t.test('supported I/O types depend on readonly and fallocate', async (t) => {
  const env = aioEnv(t);
  env.module.create({ name: 'plain', filename: env.file('p.img', 65536) });
  env.module.create({ name: 'fa', filename: env.file('f.img', 65536), fallocate: true });
  env.module.create({ name: 'ro', filename: env.file('r.img', 65536), readonly: true, fallocate: true });
  const sup = (n: string) => [IoType.READ, IoType.WRITE, IoType.FLUSH, IoType.UNMAP, IoType.WRITE_ZEROES, IoType.RESET]
    .map((ty) => env.layer.get(n)!.ioTypeSupported(ty));
  t.same(sup('plain'), [true, true, true, false, false, true]);
  t.same(sup('fa'), [true, true, true, true, true, true]);
  t.same(sup('ro'), [true, false, true, false, false, true]);
});

t.test('block_size must be a power of two and the file a multiple of it', async (t) => {
  const env = aioEnv(t);
  t.throws(() => env.module.create({ name: 'b0', filename: env.file('b.img', 65536), block_size: 1536 }), { code: 'AIO_BLOCK_SIZE', errno: Errno.EINVAL });
  t.throws(() => env.module.create({ name: 'b1', filename: env.file('c.img', 4096 + 512), block_size: 4096 }), { code: 'AIO_SIZE' });
  t.throws(() => env.module.create({ name: 'b2', filename: env.file('e.img', 0) }), { code: 'AIO_SIZE' });
  t.equal(env.module.list().length, 0, 'nothing registered, fds closed');
});

t.test('a missing file fails with ENOENT naming the file', async (t) => {
  const env = aioEnv(t);
  const filename = join(env.dir, 'missing.img');
  t.throws(() => env.module.create({ name: 'm', filename }), {
    code: 'AIO_FILE_NOT_FOUND', errno: Errno.ENOENT, message: new RegExp(filename.replace(/[.]/g, '\\.')),
  });
});

t.test('a directory fails with EISDIR', async (t) => {
  const env = aioEnv(t);
  const dir = join(env.dir, 'sub');
  mkdirSync(dir);
  t.throws(() => env.module.create({ name: 'd', filename: dir }), { code: 'AIO_IS_DIRECTORY', errno: Errno.EISDIR });
  t.throws(() => env.module.create({ name: 'd', filename: dir, readonly: true }), { code: 'AIO_IS_DIRECTORY' });
});

// Tests run as root, and CAP_DAC_OVERRIDE lets root open a chmod 0444 file (or /proc/version) for
// writing. A sysfs attribute without a store method is refused by kernfs for everyone, root
// included: /sys/kernel/notes is read-only (0444, no write op) on every kernel with sysfs.
const NOT_WRITABLE = '/sys/kernel/notes';

t.test('a file that cannot be opened for writing fails with EACCES/EROFS and suggests readonly', { skip: !existsSync(NOT_WRITABLE) && `${NOT_WRITABLE} missing (no sysfs)` }, async (t) => {
  const env = aioEnv(t);
  const err = t.throws(() => env.module.create({ name: 'w', filename: NOT_WRITABLE })) as unknown as { code: string; errno: number; message: string };
  t.equal(err.code, 'AIO_NOT_WRITABLE');
  t.ok(err.errno === Errno.EACCES || err.errno === Errno.EROFS, `errno ${err.errno}`);
  t.match(err.message, NOT_WRITABLE);
  t.match(err.message, /readonly: true/);
});
