import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blockworkPerf, fio, printRow, record, type Figure, type Row } from './harness';

/** Outside the repo and on the root filesystem (not tmpfs): O_DIRECT must reach a real device. */
export const BENCH_FILE = process.env.BLOCKWORK_BENCH_FILE ?? '/var/tmp/blockwork-bench.img';
const SIZE = 1 << 30;

/** Writes real data into the whole file once: reads of fallocated-but-unwritten extents never reach the disk. */
export function ensureBenchFile(): void {
  if (existsSync(BENCH_FILE) && statSync(BENCH_FILE).size === SIZE) return;
  execFileSync('dd', ['if=/dev/urandom', `of=${BENCH_FILE}`, 'bs=1M', `count=${SIZE >> 20}`, 'oflag=direct', 'status=none']);
}

interface Case { name: string; rw: 'randread' | 'randwrite'; qd: number }
const CASES: Case[] = [
  { name: '4K randread QD1', rw: 'randread', qd: 1 },
  { name: '4K randread QD32', rw: 'randread', qd: 32 },
  { name: '4K randwrite QD32', rw: 'randwrite', qd: 32 },
];
const KINDS = [
  { kind: 'aio', method: 'bdev_aio_create', engine: 'libaio' },
  { kind: 'uring', method: 'bdev_uring_create', engine: 'io_uring' },
] as const;

function mean(figs: Figure[]): Figure {
  const avg = (k: keyof Figure) => figs.reduce((s, f) => s + f[k], 0) / figs.length;
  return { iops: Math.round(avg('iops')), lat_avg_us: avg('lat_avg_us'), lat_p99_us: avg('lat_p99_us') };
}

type PeerFigure = Figure & { clat_avg_us: number };

/** `blockwork perf` with extra environment (e.g. completion polling off) for one run. */
async function perfWith(env: Record<string, string>, args: string[]): Promise<Figure> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await blockworkPerf(args);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const NO_POLL = { BLOCKWORK_IO_SPIN_US: '0' };

/**
 * aio and uring bdevs against fio's libaio and io_uring engines on the same file, O_DIRECT,
 * alternated run by run so both see the same machine state; `rounds` runs of each are averaged.
 * fio's average latency is its total `lat` (slat + clat): `blockwork perf` times each I/O from
 * before the submit call to its callback, so fio's clat alone would leave out the submit syscall
 * (about 16 us here, the virtio kick). QD1 cases also run once more with completion polling off.
 */
export async function benchFileBdevs(seconds: number, rounds: number): Promise<Row[]> {
  ensureBenchFile();
  const dir = mkdtempSync(join(tmpdir(), 'bw-bench-'));
  try {
    const cfg = join(dir, 'file.json');
    writeFileSync(cfg, JSON.stringify({
      plugins: ['@blockwork/bdev-aio', '@blockwork/bdev-uring'],
      subsystems: [{ subsystem: 'bdev', config: KINDS.map((k) => ({ method: k.method, params: { name: `${k.kind}0`, filename: BENCH_FILE, block_size: 4096 } })) }],
    }));
    const rows: Row[] = [];
    const byKey = new Map<string, { ours: Figure[]; peer: PeerFigure[]; noPoll: Figure[] }>();
    for (let round = 0; round < rounds; round++) {
      for (const c of CASES) {
        for (const k of KINDS) {
          const key = `${k.kind} ${c.name}`;
          const acc = byKey.get(key) ?? { ours: [], peer: [], noPoll: [] };
          byKey.set(key, acc);
          const perfArgs = ['--config', cfg, '-b', `${k.kind}0`, '-q', String(c.qd), '-o', '4096', '-w', c.rw, '-t', String(seconds)];
          acc.peer.push(await fio([`--filename=${BENCH_FILE}`, '--direct=1', `--ioengine=${k.engine}`, '--bs=4k', `--iodepth=${c.qd}`, `--rw=${c.rw}`, '--size=1g', '--time_based', `--runtime=${seconds}`], 'lat'));
          acc.ours.push(await blockworkPerf(perfArgs));
          if (c.qd === 1) acc.noPoll.push(await perfWith(NO_POLL, perfArgs));
        }
      }
    }
    const notes: string[] = [];
    for (const c of CASES) {
      for (const k of KINDS) {
        const acc = byKey.get(`${k.kind} ${c.name}`)!;
        const qd1 = c.qd === 1;
        const peer = mean(acc.peer);
        const clat = acc.peer.reduce((s, f) => s + f.clat_avg_us, 0) / acc.peer.length;
        const row: Row = {
          case: `${k.kind} ${c.name}`, ours: mean(acc.ours), peer, peerName: `fio ${k.engine}`,
          metric: qd1 ? 'latency' : 'iops', target: qd1 ? '≤ 1.15 (avg latency)' : c.rw === 'randread' ? '≥ 0.9' : undefined,
        };
        printRow(row);
        rows.push(row);
        if (qd1) {
          const off: Row = { ...row, case: `${row.case}, completion polling off`, ours: mean(acc.noPoll), target: undefined };
          printRow(off);
          rows.push(off);
          notes.push(`${k.kind} ${(row.ours.lat_avg_us / clat).toFixed(3)} (clat ${clat.toFixed(1)} us)`);
        }
      }
    }
    const u = (k: string) => rows.find((r) => r.case === `${k} 4K randread QD32`)!;
    const oursGain = u('uring').ours.iops / u('aio').ours.iops;
    const fioGain = u('uring').peer.iops / u('aio').peer.iops;
    console.log(`uring/aio at randread QD32: blockwork ${oursGain.toFixed(3)}, fio ${fioGain.toFixed(3)}, ratio ${(oursGain / fioGain).toFixed(3)} (target ≥ 0.9)`);
    console.log(`QD1 against fio's clat instead of lat: ${notes.join(', ')}`);
    record('aio and uring bdevs vs fio', `Same ${SIZE >> 30} GiB file on the root filesystem (${BENCH_FILE}), O_DIRECT, ${seconds} s per run, ${rounds} alternating rounds averaged. ` +
      'Blockwork defaults: uring rings with DEFER_TASKRUN, completion polling at QD ≤ 4 (see bdev-aio.md / bdev-uring.md); the "polling off" rows set BLOCKWORK_IO_SPIN_US=0. ' +
      "fio's avg latency is its total lat (slat + clat), the span `blockwork perf` measures (before the submit call to the callback); its p99 is clat's. " +
      `QD1 ratios against fio's clat alone: ${notes.join(', ')}. ` +
      `uring/aio gain at randread QD32: blockwork ${oursGain.toFixed(3)}, fio ${fioGain.toFixed(3)} → ratio ${(oursGain / fioGain).toFixed(3)} (target ≥ 0.9).`, rows);
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
