import t from 'tap';
import { runBdevCompliance } from '@blockwork/core';
import { cephAvailable, startCephCluster } from './fixtures/ceph-cluster';
import { PACKAGE_DIR } from './fixtures/env';

// One cluster for the whole file; each check gets a fresh daemon, a fresh image and its own
// registered cluster connection, so the config round trip replays register_cluster then create.
if (cephAvailable(t)) {
  const cluster = startCephCluster();
  t.teardown(async () => (await cluster).stop());
  let n = 0;
  runBdevCompliance(t, 'rbd', {
    plugins: [PACKAGE_DIR],
    create: async (d) => {
      const c = await cluster;
      const image = `compliance${n++}`;
      await c.cli(['create', image, '--size', '4M', '--image-feature', 'layering']);
      await d.call('bdev_rbd_register_cluster', { name: 'c0', config_file: c.confPath, config_param: { rados_osd_op_timeout: '20' } });
      return (await d.call('bdev_rbd_create', { name: 'rbd0', cluster_name: 'c0', pool_name: c.pool, rbd_name: image, block_size: 4096 })) as string;
    },
  });
}
