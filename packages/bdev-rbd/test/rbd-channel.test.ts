import t from 'tap';
import { randomBytes } from 'node:crypto';
import { allocAligned, Errno, io, IoType } from '@blockwork/core';
import { cephAvailable, startCephCluster } from './fixtures/ceph-cluster';
import { eventually, startDaemon } from './fixtures/env';

const OP_TIMEOUT_SEC = 5;

if (cephAvailable(t)) {
  const clusterP = startCephCluster();
  t.teardown(async () => (await clusterP).stop());

  /** A daemon with cluster c0 (short op timeouts) and bdev rbd0 on a fresh image of `mib` MiB. */
  const setup = async (tt: { teardown(fn: () => unknown): void }, image: string, mib = 16) => {
    const c = await clusterP;
    await c.cli(['create', image, '--size', `${mib}M`, '--image-feature', 'layering']);
    const d = await startDaemon(tt);
    const timeout = String(OP_TIMEOUT_SEC);
    await d.call('bdev_rbd_register_cluster', { name: 'c0', config_file: c.confPath,
      config_param: { rados_osd_op_timeout: timeout, rados_mon_op_timeout: timeout, rbd_cache: 'false' } });
    await d.call('bdev_rbd_create', { name: 'rbd0', cluster_name: 'c0', pool_name: c.pool, rbd_name: image, block_size: 512 });
    const desc = d.layer.open('rbd0', true);
    tt.teardown(() => desc.close());
    return { c, d, ch: desc.getIoChannel() };
  };

  t.test('many I/Os submitted in one turn complete with the right data (QD64, vectored)', async (t) => {
    const { ch } = await setup(t, 'batch');
    const N = 512;
    const blocks = 8;
    const data = randomBytes(N * blocks * 512);
    // All writes in one turn: one native submit for the batch (slots beyond 512 would wait in the queue).
    const writes: Array<Promise<void>> = [];
    for (let i = 0; i < N; i++) {
      const part = data.subarray(i * blocks * 512, (i + 1) * blocks * 512);
      writes.push(io.write(ch, [part.subarray(0, 1024), part.subarray(1024)], i * blocks, blocks));
    }
    await Promise.all(writes);
    const back = Buffer.alloc(data.length);
    const reads: Array<Promise<void>> = [];
    for (let i = 0; i < N; i++) reads.push(io.read(ch, back.subarray(i * blocks * 512, (i + 1) * blocks * 512), i * blocks, blocks));
    await Promise.all(reads);
    t.ok(back.equals(data), `${N} vectored writes read back intact`);
  });

  t.test('more I/Os than queue slots wait and still complete', async (t) => {
    const { ch } = await setup(t, 'overflow');
    const statuses = await Promise.all(Array.from({ length: 1500 }, (_, i) =>
      new Promise<number>((r) => ch.submit(IoType.READ, i % 1000, 1, [allocAligned(512)], (s) => r(s)))));
    t.equal(statuses.filter((s) => s !== 0).length, 0, '1500 reads on 512 slots all succeeded');
  });

  t.test('OSD stopped mid-I/O: I/Os fail with an errno within the timeout, the daemon stays up; I/O resumes after restart', async (t) => {
    const { c, d, ch } = await setup(t, 'outage');
    const pattern = allocAligned(4096).fill(0x3c);
    await io.write(ch, pattern, 0, 8);

    // Keep 8 I/Os in flight until told to stop; record every status.
    const statuses: number[] = [];
    let running = true;
    const worker = async (k: number): Promise<void> => {
      const buf = allocAligned(4096);
      while (running) {
        const type = k % 2 === 0 ? IoType.WRITE : IoType.READ;
        const s = await new Promise<number>((r) => ch.submit(type, 8 + ((k * 37 + statuses.length) % 1000) * 8, 8, [buf], (st) => r(st)));
        statuses.push(s);
        if (s !== 0) break;
      }
    };
    const workers = Array.from({ length: 8 }, (_, k) => worker(k));
    await new Promise((r) => setTimeout(r, 500));
    t.ok(statuses.length > 0 && statuses.every((s) => s === 0), `I/O ran before the outage (${statuses.length} ok)`);
    const stopped = Date.now();
    await c.stopOsd();
    t.comment(`OSD stopped in ${Date.now() - stopped} ms`);

    // A new I/O issued while the OSD is down fails with an errno, not a hang.
    const t0 = Date.now();
    const probe = await new Promise<number>((r) => ch.submit(IoType.READ, 0, 8, [allocAligned(4096)], (s) => r(s)));
    const took = Date.now() - t0;
    t.ok(probe < 0, `I/O during the outage failed with ${probe}`);
    t.equal(probe, -Errno.ETIMEDOUT, 'the errno is ETIMEDOUT');
    t.ok(took <= (OP_TIMEOUT_SEC + 5) * 1000, `it failed after ${took} ms (timeout ${OP_TIMEOUT_SEC} s)`);
    running = false;
    await Promise.all(workers);
    const failed = statuses.filter((s) => s !== 0);
    t.ok(failed.length > 0 && failed.every((s) => s < 0), `in-flight I/Os ended with errnos: ${[...new Set(failed)].join(', ')}`);

    // The daemon answers RPC throughout.
    const bdevs = (await d.call('bdev_get_bdevs', { name: 'rbd0' })) as Array<{ name: string }>;
    t.equal(bdevs[0].name, 'rbd0', 'daemon alive and answering during the outage');

    await c.startOsd();
    const t1 = Date.now();
    await eventually(async () => {
      const s = await new Promise<number>((r) => ch.submit(IoType.READ, 0, 8, [allocAligned(4096)], (st) => r(st)));
      if (s !== 0) throw new Error(`read ${s}`);
    }, 90_000, 200);
    t.comment(`I/O resumed ${Date.now() - t1} ms after the OSD restart`);
    const back = allocAligned(4096);
    await io.read(ch, back, 0, 8);
    t.ok(back.equals(pattern), 'data written before the outage is intact');
    const w = allocAligned(4096).fill(0x77);
    await io.write(ch, w, 16, 8);
    await io.read(ch, back, 16, 8);
    t.ok(back.equals(w), 'new writes work after the restart');
  });
}
