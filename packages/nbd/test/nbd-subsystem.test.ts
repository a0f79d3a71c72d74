import t from 'tap';
import { join } from 'node:path';
import { createLogger, Daemon } from '@blockwork/core';
import { PLUGIN, tempDir } from './fixtures/helpers';

t.test('save_config round trip: server and exports come back from the saved config', async (t) => {
  const dir = tempDir(t);
  const socket = join(dir, 'rt.sock');
  const start = (config: object) => Daemon.start({ rpcSocket: null, logger: createLogger('silent'), config: { plugins: [PLUGIN], ...config } });
  const d1 = await start({});
  await d1.call('bdev_malloc_create', { name: 'Malloc0', num_blocks: 64, block_size: 512, uuid: '11111111-2222-4333-8444-555555555555' });
  await d1.call('nbd_server_start', { socket });
  await d1.call('nbd_server_add_export', { bdev: 'Malloc0', name: 'a' });
  await d1.call('nbd_server_add_export', { bdev: 'Malloc0', name: 'b', readonly: true });
  const saved = {
    subsystems: [
      { subsystem: 'bdev', config: await d1.call('framework_get_config', { name: 'bdev' }) },
      { subsystem: 'nbd', config: await d1.call('framework_get_config', { name: 'nbd' }) },
    ],
  };
  await d1.stop();
  const d2 = await start(saved);
  t.teardown(() => d2.stop());
  t.same(await d2.call('framework_get_config', { name: 'nbd' }), saved.subsystems[1].config);
  t.same(((await d2.call('nbd_server_get_exports')) as Array<{ name: string }>).map((e) => e.name), ['a', 'b']);
});

t.test('fini drops exports and stops the listener (the bdev can then be deleted)', async (t) => {
  const d = await Daemon.start({ rpcSocket: null, logger: createLogger('silent'), config: { plugins: [PLUGIN] } });
  await d.call('bdev_malloc_create', { name: 'Malloc0', num_blocks: 64, block_size: 512 });
  await d.call('nbd_server_start', { socket: join(tempDir(t), 's.sock') });
  await d.call('nbd_server_add_export', { bdev: 'Malloc0' });
  t.match(await d.call('nbd_server_get_exports'), [{ name: 'Malloc0' }], 'name defaults to the bdev name');
  await d.stop();
  t.equal(d.layer.list().length, 0);
});
