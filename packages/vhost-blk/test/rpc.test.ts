import t from 'tap';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { RpcClient } from '@blockwork/core';
import { errorOf, startDaemon, tempDir } from './fixtures/daemon';

const SPDK_PARAMS = { ctrlr: 'vhost.0', dev_name: 'Malloc0', cpumask: '0x1', readonly: false, packed_ring: false };
const malloc = { method: 'bdev_malloc_create', params: { name: 'Malloc0', num_blocks: 2048, block_size: 512 } };

t.test('every method and param is described', async (t) => {
  const { d } = await startDaemon(t);
  for (const name of ['vhost_create_blk_controller', 'vhost_get_controllers', 'vhost_delete_controller', 'vhost_controller_set_coalescing']) {
    const m = d.registry.get(name);
    t.ok(m, `${name} registered`);
    t.ok((m?.description.length ?? 0) > 10);
    for (const [k, p] of Object.entries(m?.params?.properties ?? {})) t.ok(p.description.length > 5, `${name}.${k} described`);
  }
});

t.test("SPDK's exact params create a controller with a 0600 socket and no claim, as SPDK", async (t) => {
  const { d, dir } = await startDaemon(t);
  await d.call('bdev_malloc_create', malloc.params);
  t.equal(await d.call('vhost_create_blk_controller', SPDK_PARAMS), true);
  const sock = join(dir, 'vhost.0');
  const st = statSync(sock);
  t.ok(st.isSocket(), 'socket at <socketDir>/<ctrlr>');
  t.equal(st.mode & 0o777, 0o600);
  const [b] = (await d.call('bdev_get_bdevs', { name: 'Malloc0' })) as Array<{ claimed: boolean }>;
  t.equal(b.claimed, false);
  t.same(await d.call('vhost_get_controllers'), [{
    ctrlr: 'vhost.0', cpumask: '0x1', delay_base_us: 20, iops_threshold: 60000, socket: sock, client: false, sessions: [],
    backend_specific: { block: { readonly: false, bdev: 'Malloc0', transport: 'vhost_user_blk' } },
  }]);
});

t.test('unknown keys are ignored, as SPDK', async (t) => {
  const { d } = await startDaemon(t, { subsystems: [{ subsystem: 'bdev', config: [malloc] }] });
  t.equal(await d.call('vhost_create_blk_controller', { ctrlr: 'v', dev_name: 'Malloc0', future_option: 1 }), true);
});

t.test('errors use SPDK codes and texts', async (t) => {
  const { d } = await startDaemon(t, { subsystems: [{ subsystem: 'bdev', config: [malloc] }] });
  let e = await errorOf(() => d.call('vhost_create_blk_controller', { ctrlr: 'v', dev_name: 'Nope' }));
  t.match(e, { code: 'VHOST_BDEV_NOT_FOUND', errno: 19, rpcCode: -32602, message: 'No such device', data: { detail: /Nope/ } });
  e = await errorOf(() => d.call('vhost_create_blk_controller', { ctrlr: 'v', dev_name: 'Malloc0', packed_ring: true }));
  t.match(e, { code: 'VHOST_PACKED_RING', message: 'packed ring is not supported yet' });
  e = await errorOf(() => d.call('vhost_create_blk_controller', { ctrlr: 'v', dev_name: 'Malloc0', transport: 'vhost_user_scsi' }));
  t.match(e, { code: 'VHOST_TRANSPORT', message: 'Invalid argument' });
  e = await errorOf(() => d.call('vhost_create_blk_controller', { ctrlr: '../x', dev_name: 'Malloc0' }));
  t.match(e, { code: 'VHOST_CONTROLLER_NAME' });
  await d.call('vhost_create_blk_controller', { ctrlr: 'v', dev_name: 'Malloc0' });
  e = await errorOf(() => d.call('vhost_create_blk_controller', { ctrlr: 'v', dev_name: 'Malloc0' }));
  t.match(e, { code: 'VHOST_CONTROLLER_EXISTS', message: 'File exists' });
  t.equal(await d.call('vhost_create_blk_controller', { ctrlr: 'w', dev_name: 'Malloc0' }), true, 'a second controller on the same bdev, as SPDK accepts');
  await d.call('bdev_malloc_create', { name: 'Malloc1', num_blocks: 64, block_size: 512 });
  await d.call('bdev_passthru_create', { name: 'Pt1', base_bdev_name: 'Malloc1' });
  e = await errorOf(() => d.call('vhost_create_blk_controller', { ctrlr: 'x', dev_name: 'Malloc1' }));
  t.match(e, { code: 'VHOST_BDEV_CLAIMED', errno: 1, rpcCode: -32602, message: 'Operation not permitted', data: { detail: /claimed/ } });
  e = await errorOf(() => d.call('vhost_delete_controller', { ctrlr: 'nope' }));
  t.match(e, { code: 'VHOST_CONTROLLER_NOT_FOUND', rpcCode: -32602, message: 'No such device' });
  e = await errorOf(() => d.call('vhost_get_controllers', { name: 'nope' }));
  t.match(e, { rpcCode: -32603, message: 'No such device' });
  e = await errorOf(() => d.call('vhost_controller_set_coalescing', { ctrlr: 'v', delay_base_us: 10, iops_threshold: 0 }));
  t.match(e, { code: 'VHOST_COALESCING', message: 'Invalid argument' });
});

t.test('over the RPC socket: wire code and message', async (t) => {
  const dir = tempDir(t);
  const { d } = await startDaemon(t, { dir, rpcSocket: join(dir, 'rpc.sock') });
  void d;
  const c = await RpcClient.connect(join(dir, 'rpc.sock'));
  t.teardown(() => c.close());
  const e = await errorOf(() => c.call('vhost_delete_controller', { ctrlr: 'nope' }));
  t.match(e, { rpcCode: -32602, message: 'No such device' });
});

t.test('readonly controller: bdev opened read-only', async (t) => {
  const { d } = await startDaemon(t, { subsystems: [{ subsystem: 'bdev', config: [malloc] }] });
  await d.call('vhost_create_blk_controller', { ctrlr: 'ro', dev_name: 'Malloc0', readonly: true });
  const [b] = (await d.call('bdev_get_bdevs', { name: 'Malloc0' })) as Array<{ claimed: boolean }>;
  t.equal(b.claimed, false);
  t.match(await d.call('vhost_get_controllers', { name: 'ro' }), [{ backend_specific: { block: { readonly: true } } }]);
});

t.test('delete closes the socket and the bdev', async (t) => {
  const { d, dir } = await startDaemon(t, { subsystems: [{ subsystem: 'bdev', config: [malloc] }] });
  await d.call('vhost_create_blk_controller', { ctrlr: 'v', dev_name: 'Malloc0' });
  t.equal(await d.call('vhost_delete_controller', { ctrlr: 'v' }), true);
  t.throws(() => statSync(join(dir, 'v')), { code: 'ENOENT' });
  const [b] = (await d.call('bdev_get_bdevs', { name: 'Malloc0' })) as Array<{ claimed: boolean }>;
  t.equal(b.claimed, false);
  t.same(await d.call('vhost_get_controllers'), []);
  t.equal(await d.call('bdev_malloc_delete', { name: 'Malloc0' }), true, 'bdev deletable again');
});

t.test('cpumask is stored as given and reported as 0x…', async (t) => {
  const { d } = await startDaemon(t, { subsystems: [{ subsystem: 'bdev', config: [malloc] }] });
  await d.call('vhost_create_blk_controller', { ctrlr: 'v', dev_name: 'Malloc0', cpumask: '[0,2-3]' });
  t.match(await d.call('vhost_get_controllers'), [{ cpumask: '0xd' }]);
  t.match(await d.call('framework_get_config', { name: 'vhost_blk' }), [{ params: { cpumask: '[0,2-3]' } }]);
});

t.test('save_config round trip, with coalescing', async (t) => {
  const { d } = await startDaemon(t, { subsystems: [{ subsystem: 'bdev', config: [malloc] }] });
  await d.call('vhost_create_blk_controller', SPDK_PARAMS);
  t.equal(await d.call('vhost_controller_set_coalescing', { ctrlr: 'vhost.0', delay_base_us: 50, iops_threshold: 1000 }), true);
  const saved = [
    { subsystem: 'bdev', config: await d.call('framework_get_config', { name: 'bdev' }) },
    { subsystem: 'vhost_blk', config: await d.call('framework_get_config', { name: 'vhost_blk' }) },
  ];
  t.same(saved[1].config, [
    { method: 'vhost_create_blk_controller', params: SPDK_PARAMS },
    { method: 'vhost_controller_set_coalescing', params: { ctrlr: 'vhost.0', delay_base_us: 50, iops_threshold: 1000 } },
  ]);
  await d.stop();
  const { d: d2 } = await startDaemon(t, { subsystems: saved });
  t.same(await d2.call('framework_get_config', { name: 'vhost_blk' }), saved[1].config);
  t.match(await d2.call('vhost_get_controllers'), [{ delay_base_us: 50, iops_threshold: 1000 }]);
});

t.test('client mode: reported, saved only when set, and re-created in client mode from the saved config', async (t) => {
  const { d, dir } = await startDaemon(t, { subsystems: [{ subsystem: 'bdev', config: [malloc] }] });
  t.equal(await d.call('vhost_create_blk_controller', { ...SPDK_PARAMS, client: true }), true);
  t.throws(() => statSync(join(dir, 'vhost.0')), { code: 'ENOENT' }, 'no socket: the front end creates it');
  t.match(await d.call('vhost_get_controllers'), [{ ctrlr: 'vhost.0', socket: join(dir, 'vhost.0'), client: true, sessions: [] }]);
  const saved = [
    { subsystem: 'bdev', config: await d.call('framework_get_config', { name: 'bdev' }) },
    { subsystem: 'vhost_blk', config: await d.call('framework_get_config', { name: 'vhost_blk' }) },
  ];
  t.same(saved[1].config, [{ method: 'vhost_create_blk_controller', params: { ...SPDK_PARAMS, client: true } }]);
  await d.stop();
  const { d: d2 } = await startDaemon(t, { subsystems: saved });
  t.match(await d2.call('vhost_get_controllers'), [{ client: true }]);
  t.equal(await d2.call('vhost_delete_controller', { ctrlr: 'vhost.0' }), true);
});

t.test('hot-remove of the bdev keeps the controller listed', async (t) => {
  const { d } = await startDaemon(t, { subsystems: [{ subsystem: 'bdev', config: [malloc] }] });
  await d.call('vhost_create_blk_controller', { ctrlr: 'v', dev_name: 'Malloc0' });
  await d.layer.unregister('Malloc0');
  t.match(await d.call('vhost_get_controllers'), [{ ctrlr: 'v' }]);
  t.equal(await d.call('vhost_delete_controller', { ctrlr: 'v' }), true);
});
