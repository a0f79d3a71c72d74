import t from 'tap';
import { randomUUID } from 'node:crypto';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { BdevLayer, createLogger, MallocBdevModule } from '@blockwork/core';
import { VhostBlkController } from '../src/vhost-blk-controller';
import { tempDir } from './fixtures/daemon';

const log = createLogger('silent');

function layerWithMalloc(): BdevLayer {
  const layer = new BdevLayer();
  new MallocBdevModule(layer).create({ name: 'Malloc0', uuid: randomUUID(), numBlocks: 2048, blockSize: 512, physicalBlockSize: 512, optimalIoBoundary: 0 });
  return layer;
}

const opts = { ctrlr: 'v0', devName: 'Malloc0', cpumask: undefined, readonly: false };

t.test('a stale socket at the path is replaced', async (t) => {
  const dir = tempDir(t);
  const stale = createServer();
  await new Promise<void>((r) => stale.listen(join(dir, 'v0'), r));
  // Close the server without unlinking: the socket file stays, as after a crash.
  (stale as unknown as { _handle: { close(): void } })._handle.close();
  const c = await VhostBlkController.create(opts, layerWithMalloc(), dir, log);
  t.teardown(() => c.destroy());
  t.ok(statSync(join(dir, 'v0')).isSocket());
});

t.test('a regular file at the path is left alone and the create fails', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'v0'), 'data');
  const layer = layerWithMalloc();
  await t.rejects(VhostBlkController.create(opts, layer, dir, log), { code: 'VHOST_SOCKET' });
  t.equal(layer.inUse('Malloc0'), false, 'bdev closed on failure');
  t.ok(statSync(join(dir, 'v0')).isFile());
});

t.test('a socket path over 107 bytes fails with VHOST_SOCKET', async (t) => {
  const dir = join(tempDir(t), 'x'.repeat(100));
  mkdirSync(dir);
  await t.rejects(VhostBlkController.create(opts, layerWithMalloc(), dir, log), { code: 'VHOST_SOCKET' });
});

t.test('destroy closes the bdev (no claim was taken) and removes the socket', async (t) => {
  const dir = tempDir(t);
  const layer = layerWithMalloc();
  const c = await VhostBlkController.create(opts, layer, dir, log);
  t.equal(layer.claimOf('Malloc0'), null, 'no claim, as SPDK');
  await c.destroy();
  t.equal(layer.inUse('Malloc0'), false);
  t.throws(() => statSync(join(dir, 'v0')));
});
