import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { blockworkPerf, fio, printRow, record, REPO, type Figure, type Row } from './harness';

/** The part of bdev-rbd's test cluster fixture used here (loaded from its build output, not imported: another package's test code). */
interface CephCluster {
  dir: string;
  confPath: string;
  pool: string;
  cli(args: string[], opts?: { timeoutMs?: number }): Promise<string>;
  stop(): Promise<void>;
}
const FIXTURE = join(REPO, 'packages/bdev-rbd/dist/test/fixtures/ceph-cluster.js');
const IMAGE = 'bench';
const CASES = [
  { name: '4K randread QD32', rw: 'randread' as const },
  { name: '4K randwrite QD32', rw: 'randwrite' as const },
];

function mean(figs: Figure[]): Figure {
  const avg = (k: keyof Figure) => figs.reduce((s, f) => s + f[k], 0) / figs.length;
  return { iops: Math.round(avg('iops')), lat_avg_us: avg('lat_avg_us'), lat_p99_us: avg('lat_p99_us') };
}

/**
 * The rbd bdev against fio's rbd engine on the same image of a fresh single-node memstore cluster,
 * rbd_cache=false on both (CEPH_ARGS for both, config_param for Blockwork too), runs alternated.
 */
export async function benchRbd(seconds: number, rounds: number): Promise<Row[] | null> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fx = require(FIXTURE) as { cephMissing(): string | null; startCephCluster(): Promise<CephCluster> };
  const missing = fx.cephMissing();
  if (missing !== null || !existsSync('/usr/lib/x86_64-linux-gnu/librbd.so.1')) {
    console.log(`rbd benchmark skipped: ${missing ?? 'librbd1 missing'}`);
    return null;
  }
  const c = await fx.startCephCluster();
  try {
    await c.cli(['create', IMAGE, '--size', '256M', '--image-feature', 'layering']);
    // Written once so reads hit real objects, not absent ones (which read as zeros without OSD work).
    await c.cli(['bench', '--io-type', 'write', '--io-size', '4M', '--io-total', '256M', '--io-pattern', 'seq', IMAGE], { timeoutMs: 300_000 });
    process.env.CEPH_CONF = c.confPath;
    process.env.CEPH_ARGS = '--rbd_cache=false';
    const cfg = join(c.dir, 'bench.json');
    writeFileSync(cfg, JSON.stringify({ plugins: [join(REPO, 'packages/bdev-rbd')], subsystems: [{ subsystem: 'bdev', config: [
      { method: 'bdev_rbd_register_cluster', params: { name: 'c0', config_file: c.confPath, config_param: { rbd_cache: 'false' } } },
      { method: 'bdev_rbd_create', params: { name: 'rbd0', cluster_name: 'c0', pool_name: c.pool, rbd_name: IMAGE, block_size: 4096 } },
    ] }] }));
    const rows: Row[] = [];
    for (const k of CASES) {
      const ours: Figure[] = [];
      const peer: Figure[] = [];
      for (let r = 0; r < rounds; r++) {
        ours.push(await blockworkPerf(['--config', cfg, '-b', 'rbd0', '-w', k.rw, '-q', '32', '-o', '4096', '-t', String(seconds)]));
        peer.push(await fio(['--ioengine=rbd', '--clientname=admin', `--pool=${c.pool}`, `--rbdname=${IMAGE}`, `--rw=${k.rw}`, '--bs=4k',
          '--iodepth=32', '--time_based', `--runtime=${seconds}`]));
      }
      const row: Row = { case: `rbd ${k.name}`, ours: mean(ours), peer: mean(peer), peerName: 'fio rbd engine', metric: 'iops', target: '≥ 0.9' };
      printRow(row);
      rows.push(row);
    }
    record('rbd bdev vs fio rbd engine',
      `Single-node Ceph 16 test cluster (one mon, one memstore OSD, loopback, cephx), 256 MiB image written once, rbd_cache=false on both. `
      + `\`blockwork perf\` on a bdev_rbd bdev (block_size 4096) vs \`fio --ioengine=rbd\` on the same image, ${seconds} s per run, `
      + `${rounds} alternated runs of each averaged. Both share the cluster; the OSD on the same 2 cores dominates the figures.`, rows);
    return rows;
  } finally {
    delete process.env.CEPH_ARGS;
    await c.stop();
  }
}
