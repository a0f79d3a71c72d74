import t from 'tap';
import { IoType } from '@blockwork/core';
import { makeFile, setup, tempDir } from './fixtures/env';

t.test('describes itself as SPDK does', async (t) => {
  const { layer, call } = setup(t);
  const file = makeFile(tempDir(t), 'a.img', 1 << 20);
  await call('bdev_uring_create', { filename: file, name: 'u0', uuid: '11111111-2222-4333-8444-555555555555' });
  const b = layer.require('u0');
  t.equal(b.productName, 'URING bdev');
  t.same(b.driverSpecific(), { uring: { filename: file } });
  t.same(b.configEntry(), {
    method: 'bdev_uring_create',
    params: { name: 'u0', filename: file, block_size: 512, uuid: '11111111-2222-4333-8444-555555555555' },
  });
  t.same([IoType.READ, IoType.WRITE, IoType.FLUSH, IoType.UNMAP, IoType.WRITE_ZEROES, IoType.RESET].map((x) => b.ioTypeSupported(x)),
    [true, true, true, true, true, false]);
  t.equal(layer.get('11111111-2222-4333-8444-555555555555'), b, 'the uuid is an alias');
});

t.test('config entry replays to the same geometry', async (t) => {
  const a = setup(t);
  const file = makeFile(tempDir(t), 'a.img', 1 << 20);
  await a.call('bdev_uring_create', { filename: file, name: 'u0', block_size: 4096 });
  const entry = a.layer.require('u0').configEntry()!;
  await a.call('bdev_uring_delete', { name: 'u0' });
  const b = setup(t);
  await b.call(entry.method, entry.params);
  const again = b.layer.require('u0');
  t.same(again.configEntry(), entry);
  t.equal(again.numBlocks, 256);
});
