import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blockworkPerf, fio, printRow, record, type Row } from './harness';

/**
 * The bdev layer's own cost: 4 KiB reads at QD32 on a null bdev (no data touched), against fio's
 * null engine doing the same, each in its own process on one core.
 */
export async function benchBdevLayer(seconds: number): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'bw-bench-'));
  try {
    const cfg = join(dir, 'null.json');
    writeFileSync(cfg, JSON.stringify({ plugins: [], subsystems: [{ subsystem: 'bdev', config: [{ method: 'bdev_null_create', params: { name: 'Null0', num_blocks: 262144, block_size: 4096 } }] }] }));
    const rows: Row[] = [];
    for (const qd of [32, 1]) {
      const ours = await blockworkPerf(['--config', cfg, '-b', 'Null0', '-q', String(qd), '-o', '4096', '-w', 'randread', '-t', String(seconds)]);
      const peer = await fio(['--ioengine=null', '--rw=randread', '--bs=4k', '--size=1g', `--iodepth=${qd}`, '--time_based', `--runtime=${seconds}`]);
      const row: Row = { case: `null bdev 4K randread QD${qd}`, ours, peer, peerName: 'fio null engine', metric: 'iops', target: qd === 32 ? '≥ 1,000,000 IOPS' : undefined };
      printRow(row);
      rows.push(row);
    }
    record('bdev layer (null bdev)', 'blockwork perf in-process on a null bdev vs fio --ioengine=null, 4 KiB, each in its own process.', rows);
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
