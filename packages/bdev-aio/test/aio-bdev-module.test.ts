import { appendFileSync } from 'node:fs';
import { type Bdev, type BdevEvent, Errno, allocAligned, io } from '@blockwork/core';
import t from 'tap';
import { aioEnv, statusOf } from './fixtures/aio-env';

t.test('create registers the bdev with the layer', async (t) => {
  const env = aioEnv(t);
  t.equal(env.module.create({ name: 'a0', filename: env.file('a.img', 65536) }), 'a0');
  t.equal(env.layer.get('a0')?.module, env.module);
});

t.test('a duplicate name fails with core BDEV_EXISTS and leaves the first bdev working', async (t) => {
  const env = aioEnv(t);
  env.module.create({ name: 'a0', filename: env.file('a.img', 65536) });
  t.throws(() => env.module.create({ name: 'a0', filename: env.file('b.img', 65536) }), { code: 'BDEV_EXISTS', errno: Errno.EEXIST });
  t.equal(env.module.list().length, 1);
  const ch = env.layer.open('a0', true).getIoChannel();
  t.equal(await statusOf(io.write(ch, allocAligned(512), 0, 1)), 0);
});

t.test('delete of an unknown or foreign bdev fails by code', async (t) => {
  const env = aioEnv(t);
  await t.rejects(env.module.delete('nope'), { code: 'BDEV_NOT_FOUND' });
  const foreign = { name: 'x', aliases: [], uuid: '00000000-0000-4000-8000-000000000000', blockSize: 512 } as unknown as Bdev;
  env.layer.register(foreign);
  await t.rejects(env.module.delete('x'), { code: 'AIO_NOT_AIO_BDEV', errno: Errno.ENODEV });
});

t.test('rescan picks up a grown file and notifies descriptor owners', async (t) => {
  const env = aioEnv(t);
  const filename = env.file('a.img', 65536);
  env.module.create({ name: 'a0', filename, block_size: 4096 });
  const events: BdevEvent[] = [];
  const ch = env.layer.open('a0', true, (ev) => events.push(ev)).getIoChannel();
  t.equal(await statusOf(io.read(ch, allocAligned(4096), 16, 1)), -Errno.EINVAL, 'block 16 is past the end before');
  appendFileSync(filename, Buffer.alloc(65536, 0x5a));
  t.equal(env.module.rescan('a0'), 32);
  t.equal(env.layer.get('a0')!.numBlocks, 32);
  t.same(events, ['resize']);
  const r = allocAligned(4096);
  t.equal(await statusOf(io.read(ch, r, 16, 1)), 0, 'the new blocks are readable');
  t.ok(r.every((b) => b === 0x5a));
  t.equal(env.module.rescan('a0'), 32, 'unchanged size: no event');
  t.equal(events.length, 1);
});
