import t from 'tap';
import { createLogger, BdevLayer } from '@blockwork/core';
import { RbdBdevModule } from '../src/rbd-bdev-module';
import { errorOf, startDaemon } from './fixtures/env';

// A machine without librbd, simulated: the loader is pointed at a library that does not exist.
process.env.BLOCKWORK_LIBRBD = '/nonexistent/librbd.so.1';

t.test('every method and param is described', async (t) => {
  const methods = new RbdBdevModule(new BdevLayer(), createLogger('silent')).rpcMethods();
  t.same(methods.map((m) => m.name), ['bdev_rbd_register_cluster', 'bdev_rbd_unregister_cluster', 'bdev_rbd_get_clusters_info',
    'bdev_rbd_create', 'bdev_rbd_delete', 'bdev_rbd_resize']);
  for (const m of methods) {
    t.ok(m.description.length > 10, `${m.name} has a description`);
    for (const [k, p] of Object.entries(m.params?.properties ?? {})) t.ok(p.description.length > 5, `${m.name}.${k} described`);
  }
  t.same(methods[3].params?.required, ['pool_name', 'rbd_name', 'block_size']);
});

t.test('without librbd, create and register_cluster answer "librbd not found: install librbd1"', async (t) => {
  const d = await startDaemon(t);
  const e = await errorOf(() => d.call('bdev_rbd_create', { name: 'r', pool_name: 'rbd', rbd_name: 'a', block_size: 512 }));
  t.match(e, { code: 'RBD_LIBRARY_MISSING', errno: 2, message: /^librbd not found: install librbd1 \(dlopen \/nonexistent\/librbd.so.1/ });
  const e2 = await errorOf(() => d.call('bdev_rbd_register_cluster', { name: 'c0' }));
  t.match(e2, { code: 'RBD_LIBRARY_MISSING', message: /librbd not found: install librbd1/ });
  t.same(await d.call('bdev_get_bdevs', {}), [], 'daemon fine, nothing created');
});

t.test('config maps must hold strings', async (t) => {
  const d = await startDaemon(t);
  const e = await errorOf(() => d.call('bdev_rbd_register_cluster', { name: 'c0', config_param: { mon_host: 5 } }));
  t.match(e, { rpcCode: -32602, message: /config_param.mon_host' must be string/ });
});

t.test('cluster_name excludes user_id and config', async (t) => {
  const d = await startDaemon(t);
  const e = await errorOf(() => d.call('bdev_rbd_create', { cluster_name: 'c', user_id: 'admin', pool_name: 'rbd', rbd_name: 'a', block_size: 512 }));
  t.match(e, { code: 'RBD_CONFIG_INVALID', message: /cluster_name excludes user_id and config/ });
});
