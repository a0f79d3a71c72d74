import t from 'tap';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { allocAligned, type BdevEvent, io } from '@blockwork/core';
import { cephAvailable, startCephCluster } from './fixtures/ceph-cluster';
import { errorOf, PACKAGE_DIR, startDaemon } from './fixtures/env';

const BIN = join(PACKAGE_DIR, '..', 'cli', 'bin', 'blockwork.js');

if (cephAvailable(t)) {
  const clusterP = startCephCluster();
  t.teardown(async () => (await clusterP).stop());
  let n = 0;
  const image = async (mib = 8): Promise<string> => {
    const name = `img${n++}`;
    await (await clusterP).cli(['create', name, '--size', `${mib}M`, '--image-feature', 'layering']);
    return name;
  };

  t.test('cluster startup time', async (t) => {
    const c = await clusterP;
    t.comment(`test cluster ready in ${c.startMs} ms`);
    t.ok(c.startMs < 120_000);
  });

  t.test('register_cluster, get_clusters_info in SPDK\'s shape, unregister', async (t) => {
    const c = await clusterP;
    const d = await startDaemon(t);
    t.equal(await d.call('bdev_rbd_register_cluster', { name: 'c0', config_file: c.confPath, core_mask: '0x1' }), 'c0');
    t.equal(await d.call('bdev_rbd_register_cluster', { name: 'c1', user_id: 'admin', config_param: { mon_host: c.monHost, key: c.adminKey } }), 'c1');
    t.same(await d.call('bdev_rbd_get_clusters_info', { name: 'c0' }), { cluster_name: 'c0', config_file: c.confPath });
    t.same(await d.call('bdev_rbd_get_clusters_info', {}), [
      { cluster_name: 'c0', config_file: c.confPath },
      { cluster_name: 'c1', user_id: 'admin', config_param: { mon_host: c.monHost, key: c.adminKey } },
    ]);
    const dup = await errorOf(() => d.call('bdev_rbd_register_cluster', { name: 'c0', config_file: c.confPath }));
    t.match(dup, { code: 'RBD_CLUSTER_EXISTS', errno: 17 });
    t.equal(await d.call('bdev_rbd_unregister_cluster', { name: 'c1' }), true);
    t.match(await errorOf(() => d.call('bdev_rbd_unregister_cluster', { name: 'c1' })), { code: 'RBD_CLUSTER_NOT_FOUND', errno: 2 });
    t.match(await errorOf(() => d.call('bdev_rbd_get_clusters_info', { name: 'c1' })), { code: 'RBD_CLUSTER_NOT_FOUND' });
  });

  t.test('create: image size, default name Ceph<N>, product name and driver_specific', async (t) => {
    const c = await clusterP;
    const d = await startDaemon(t);
    const img = await image(8);
    await d.call('bdev_rbd_register_cluster', { name: 'c0', config_file: c.confPath });
    t.equal(await d.call('bdev_rbd_create', { cluster_name: 'c0', pool_name: c.pool, rbd_name: img, block_size: 4096 }), 'Ceph0');
    const [b] = (await d.call('bdev_get_bdevs', { name: 'Ceph0' })) as Array<Record<string, unknown>>;
    t.match(b, { product_name: 'Ceph Rbd Disk', block_size: 4096, num_blocks: 2048, driver_specific: { rbd: { pool_name: c.pool, rbd_name: img, cluster_name: 'c0' } } });
    t.equal(await d.call('bdev_rbd_create', { name: 'priv', pool_name: c.pool, rbd_name: img, block_size: 512,
      user_id: 'admin', config: { mon_host: c.monHost, keyring: c.keyringPath } }), 'priv', 'a private connection from user_id + config');
    const [p] = (await d.call('bdev_get_bdevs', { name: 'priv' })) as Array<Record<string, unknown>>;
    t.same(p.driver_specific, { rbd: { pool_name: c.pool, rbd_name: img, user_id: 'admin', config: { mon_host: c.monHost, keyring: c.keyringPath } } });
    t.equal(p.num_blocks, 16384);
    const cfg = (await d.call('framework_get_config', { name: 'bdev' })) as Array<{ method: string }>;
    const methods = cfg.map((e) => e.method);
    t.ok(methods.indexOf('bdev_rbd_register_cluster') < methods.indexOf('bdev_rbd_create'), 'save_config registers the cluster before the creates');
  });

  t.test('wrong pool, wrong image, wrong key, dead cluster: clear errors, daemon fine', async (t) => {
    const c = await clusterP;
    const d = await startDaemon(t);
    await d.call('bdev_rbd_register_cluster', { name: 'c0', config_file: c.confPath });
    const pool = await errorOf(() => d.call('bdev_rbd_create', { name: 'x', cluster_name: 'c0', pool_name: 'nopool', rbd_name: 'a', block_size: 512 }));
    t.match(pool, { code: 'RBD_POOL_NOT_FOUND', errno: 2, message: /pool 'nopool' does not exist/ });
    const img = await errorOf(() => d.call('bdev_rbd_create', { name: 'x', cluster_name: 'c0', pool_name: c.pool, rbd_name: 'noimg', block_size: 512 }));
    t.match(img, { code: 'RBD_IMAGE_NOT_FOUND', errno: 2, message: /image 'noimg' does not exist in pool 'rbd'/ });
    const cl = await errorOf(() => d.call('bdev_rbd_create', { name: 'x', cluster_name: 'nope', pool_name: c.pool, rbd_name: 'a', block_size: 512 }));
    t.match(cl, { code: 'RBD_CLUSTER_NOT_FOUND', message: /cluster 'nope'/ });
    const bad = join(c.dir, 'bad.keyring');
    writeFileSync(bad, '[client.admin]\n\tkey = AQBuN+RlAAAAABAAq7Zp4n6B0S6lS1xkQ9L6XQ==\n');
    const key = await errorOf(() => d.call('bdev_rbd_register_cluster', { name: 'bad', key_file: bad, config_param: { mon_host: c.monHost, client_mount_timeout: '3' } }));
    t.match(key, { code: 'RBD_AUTH_FAILED', errno: 13, message: /did not authenticate client.admin within 3 s: wrong key/ });
    const t0 = Date.now();
    const dead = await errorOf(() => d.call('bdev_rbd_register_cluster', { name: 'dead', config_param: { mon_host: '127.0.0.1:9', client_mount_timeout: '2' } }));
    t.match(dead, { code: 'RBD_CLUSTER_UNREACHABLE', errno: 110, message: /no monitor answered within 2 s/ });
    t.ok(Date.now() - t0 < 10_000, 'gave up after the configured timeout');
    const opt = await errorOf(() => d.call('bdev_rbd_register_cluster', { name: 'o', config_param: { no_such_option: '1' } }));
    t.match(opt, { code: 'RBD_CONFIG_INVALID', message: /no_such_option/ });
    const file = await errorOf(() => d.call('bdev_rbd_register_cluster', { name: 'f', config_file: '/nonexistent/ceph.conf' }));
    t.match(file, { code: 'RBD_CONFIG_INVALID', message: /\/nonexistent\/ceph.conf/ });
    const bs = await errorOf(() => d.call('bdev_rbd_create', { name: 'x', cluster_name: 'c0', pool_name: c.pool, rbd_name: 'a', block_size: 1000 }));
    t.match(bs, { code: 'RBD_BLOCK_SIZE' });
    t.same(await d.call('bdev_get_bdevs', {}), [], 'no bdev left behind');
    t.same(((await d.call('bdev_rbd_get_clusters_info', {})) as unknown[]).length, 1, 'only c0 registered');
  });

  t.test('data written through Blockwork reads back with rbd export', async (t) => {
    const c = await clusterP;
    const d = await startDaemon(t);
    const img = await image(4);
    await d.call('bdev_rbd_register_cluster', { name: 'c0', config_file: c.confPath });
    await d.call('bdev_rbd_create', { name: 'rbd0', cluster_name: 'c0', pool_name: c.pool, rbd_name: img, block_size: 512 });
    const desc = d.layer.open('rbd0', true);
    const ch = desc.getIoChannel();
    const data = allocAligned(4 << 20);
    data.set(randomBytes(data.length));
    for (let off = 0; off < data.length; off += 256 << 10) await io.write(ch, data.subarray(off, off + (256 << 10)), off / 512, 512);
    await io.flush(ch);
    desc.close();
    const exported = await c.cliBuffer(['export', '--no-progress', `${c.pool}/${img}`, '-']);
    t.equal(exported.length, data.length);
    t.ok(exported.equals(data), '4 MiB exported by the rbd CLI match what was written');
  });

  t.test('resize grows the image; bdev_get_bdevs and descriptors see it; shrinking is refused', async (t) => {
    const c = await clusterP;
    const d = await startDaemon(t);
    const img = await image(4);
    await d.call('bdev_rbd_register_cluster', { name: 'c0', config_file: c.confPath });
    await d.call('bdev_rbd_create', { name: 'rbd0', cluster_name: 'c0', pool_name: c.pool, rbd_name: img, block_size: 4096 });
    const events: BdevEvent[] = [];
    const desc = d.layer.open('rbd0', true, (ev) => events.push(ev));
    t.teardown(() => desc.close());
    t.equal(await d.call('bdev_rbd_resize', { name: 'rbd0', new_size: 12 }), true);
    const [b] = (await d.call('bdev_get_bdevs', { name: 'rbd0' })) as Array<{ num_blocks: number }>;
    t.equal(b.num_blocks, 3072, '12 MiB of 4 KiB blocks');
    t.same(events, ['resize']);
    t.match(await c.cli(['info', `${c.pool}/${img}`]), /size 12 MiB/, 'the image itself grew');
    const w = allocAligned(4096).fill(0x42);
    await io.write(desc.getIoChannel(), w, 3071, 1);
    t.match(await errorOf(() => d.call('bdev_rbd_resize', { name: 'rbd0', new_size: 8 })), { code: 'RBD_RESIZE_INVALID', errno: 22 });
    t.match(await errorOf(() => d.call('bdev_rbd_resize', { name: 'Malloc9', new_size: 8 })), { code: 'BDEV_NOT_FOUND' });
  });

  t.test('delete closes the image; unregister is refused while bdevs use the cluster', async (t) => {
    const c = await clusterP;
    const d = await startDaemon(t);
    const img = await image(4);
    await d.call('bdev_rbd_register_cluster', { name: 'c0', config_file: c.confPath });
    await d.call('bdev_rbd_create', { name: 'rbd0', cluster_name: 'c0', pool_name: c.pool, rbd_name: img, block_size: 512 });
    t.match(await errorOf(() => d.call('bdev_rbd_unregister_cluster', { name: 'c0' })), { code: 'RBD_CLUSTER_IN_USE', errno: 16, message: /rbd0/ });
    t.equal(await d.call('bdev_rbd_delete', { name: 'rbd0' }), true);
    t.same(await d.call('bdev_get_bdevs', {}), []);
    t.match(await errorOf(() => d.call('bdev_rbd_delete', { name: 'rbd0' })), { code: 'BDEV_NOT_FOUND' });
    t.equal(await d.call('bdev_rbd_unregister_cluster', { name: 'c0' }), true);
    t.same(await d.call('bdev_rbd_get_clusters_info', {}), []);
    // The image is closed: rbd rm (which refuses images with watchers) succeeds.
    await c.cli(['rm', '--no-progress', `${c.pool}/${img}`]);
    t.pass('image has no watchers left');
  });

  t.test('blockwork perf -w verify passes on an rbd bdev', async (t) => {
    const c = await clusterP;
    const img = await image(16);
    const cfgPath = join(c.dir, 'perf.json');
    writeFileSync(cfgPath, JSON.stringify({ plugins: [PACKAGE_DIR], subsystems: [{ subsystem: 'bdev', config: [
      { method: 'bdev_rbd_register_cluster', params: { name: 'c0', config_file: c.confPath } },
      { method: 'bdev_rbd_create', params: { name: 'rbd0', cluster_name: 'c0', pool_name: c.pool, rbd_name: img, block_size: 4096 } },
    ] }] }));
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'perf', '--config', cfgPath, '-b', 'rbd0', '-w', 'verify', '-t', '5', '-q', '16', '--json'],
      { env: { ...process.env, BLOCKWORK_LOG_LEVEL: 'error' }, timeout: 120_000 });
    const r = JSON.parse(stdout) as { ios: number; errors: number; miscompares: number; iops: number };
    t.comment(`verify: ${r.ios} I/Os, ${r.iops} IOPS`);
    t.ok(r.ios > 100, `${r.ios} I/Os done`);
    t.equal(r.errors, 0);
    t.equal(r.miscompares, 0);
  });
}
