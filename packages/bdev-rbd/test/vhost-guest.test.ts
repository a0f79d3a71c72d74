import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, Daemon } from '@blockwork/core';
import { requireGuestTools, runGuest } from '@blockwork/guest-vm';
import { cephAvailable, startCephCluster } from './fixtures/ceph-cluster';

// The scale-out path end to end: a QEMU guest's disk is a vhost-blk controller on an rbd bdev.
// One cluster and one guest boot (each costs 10–80 s here), every check batched into one script.
const SCRIPT = `
echo "size $(cat /sys/block/vda/size) $(cat /sys/block/vda/queue/logical_block_size)"
if fio --name=v --filename=/dev/vda --rw=randwrite --bs=4k --size=8M --iodepth=16 --ioengine=libaio --direct=1 \\
   --verify=crc32c --do_verify=1 --verify_fatal=1 >/tmp/fio.out 2>&1; then echo fio-ok; else cat /tmp/fio.out; fi
dd if=/dev/urandom of=/tmp/pat bs=4096 count=64 status=none
dd if=/tmp/pat of=/dev/vda bs=4096 seek=4096 oflag=direct conv=fsync status=none && echo write-ok
echo "md5 $(md5sum /tmp/pat | cut -d' ' -f1)"
`;

t.setTimeout(15 * 60_000);

t.test('a QEMU guest served by a vhost-blk controller on an rbd bdev', async (t) => {
  if (!requireGuestTools(t) || !cephAvailable(t)) return;
  const cluster = await startCephCluster();
  t.teardown(() => cluster.stop());
  await cluster.cli(['create', 'vm0', '--size', '64M', '--image-feature', 'layering']);
  const dir = mkdtempSync(join(tmpdir(), 'bw-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const d = await Daemon.start({
    rpcSocket: null, socketDir: dir, runDir: dir, logger: createLogger('silent'),
    config: { plugins: ['@blockwork/bdev-rbd', '@blockwork/vhost-blk'] },
  });
  t.teardown(() => d.stop());
  await d.call('bdev_rbd_register_cluster', { name: 'c0', config_file: cluster.confPath });
  t.equal(await d.call('bdev_rbd_create', { name: 'rbd0', cluster_name: 'c0', pool_name: cluster.pool, rbd_name: 'vm0', block_size: 512 }), 'rbd0');
  t.equal(await d.call('vhost_create_blk_controller', { ctrlr: 'vhost.0', dev_name: 'rbd0' }), true);
  const r = await runGuest({ script: SCRIPT, vhostUserBlk: [{ socket: join(dir, 'vhost.0'), numQueues: 2 }], timeoutMs: 600_000 });
  t.equal(r.exitCode, 0, 'guest script ran');
  t.match(r.output, /^size 131072 512$/m, 'the guest sees the image size and block size');
  t.match(r.output, /^fio-ok$/m, 'fio randwrite with crc32c verify passed in the guest');
  t.match(r.output, /^write-ok$/m);
  if (!/fio-ok/.test(r.output)) t.comment(r.output + r.console.slice(-3000));
  const guestMd5 = /^md5 ([0-9a-f]{32})$/m.exec(r.output)?.[1];
  await d.call('vhost_delete_controller', { ctrlr: 'vhost.0' });
  await d.call('bdev_rbd_delete', { name: 'rbd0' });
  const image = await cluster.cliBuffer(['export', `${cluster.pool}/vm0`, '-'], 120_000);
  const region = image.subarray(4096 * 4096, 4096 * 4096 + 64 * 4096);
  t.equal(createHash('md5').update(region).digest('hex'), guestMd5, 'rbd export outside Blockwork holds what the guest wrote');
});
