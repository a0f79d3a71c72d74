import t from 'tap';
import { join } from 'node:path';
import { bdevComplianceChecks, createLogger, Daemon } from '@blockwork/core';
import { haveQsd, startQsd } from './fixtures/qsd';

// core's runBdevCompliance, except the config round trip: it starts the second daemon while the
// first still holds the connection, and qemu-storage-daemon serves one front end at a time. The
// round trip below stops the first daemon before replaying its config.
const log = createLogger('silent');
const plugins = [join(__dirname, '..')];
const start = (config: object = {}) => Daemon.start({ rpcSocket: null, logger: log, config: { plugins, ...config } });
const attach = (sock: string) => ({ name: 'VirtioBlk0', trtype: 'user', traddr: sock, dev_type: 'blk', vq_size: 64 });

if (haveQsd(t)) {
  for (const check of bdevComplianceChecks.filter((c) => !c.name.startsWith('config round trip'))) {
    t.test(`virtio compliance: ${check.name}`, async (t) => {
      const qsd = await startQsd(t, 'file', { sizeMiB: 4 });
      const daemon = await start();
      t.teardown(() => daemon.stop());
      const bdev = ((await daemon.call('bdev_virtio_attach_controller', attach(qsd.sock))) as string[])[0];
      await t.resolves(check.run({ daemon, bdev, restart: () => Promise.reject(new Error('not used')) }), check.name);
    });
  }

  t.test('virtio compliance: config round trip (first daemon stopped before the replay)', async (t) => {
    const qsd = await startQsd(t, 'file', { sizeMiB: 4 });
    const d1 = await start();
    await d1.call('bdev_virtio_attach_controller', attach(qsd.sock));
    const saved = await d1.call('framework_get_config', { name: 'bdev' });
    const before = await d1.call('bdev_get_bdevs', { name: 'VirtioBlk0' });
    await d1.stop();
    const d2 = await start({ subsystems: [{ subsystem: 'bdev', config: saved }] });
    t.teardown(() => d2.stop());
    t.same(await d2.call('bdev_get_bdevs', { name: 'VirtioBlk0' }), before, 'identical bdev');
    t.same(await d2.call('framework_get_config', { name: 'bdev' }), saved, 'identical config');
  });
}
