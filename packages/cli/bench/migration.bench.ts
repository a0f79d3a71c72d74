import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RpcClient } from '@blockwork/core';
import { blockworkPerf, type Figure, printRow, record, REPO, type Row } from './harness';

/** On the root filesystem (O_DIRECT must reach a real device), outside the repo. */
const DIR = process.env.BLOCKWORK_BENCH_DIR ?? '/var/tmp';
const SIZE = 256 * 2 ** 20;
const BIN = join(REPO, 'packages/cli/bin/blockwork.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Daemon { child: ChildProcess; rpc: RpcClient; sock: string }

async function startDaemon(dir: string, cfg: string): Promise<Daemon> {
  const sock = join(dir, 'rpc.sock');
  const child = spawn(process.execPath, [BIN, 'start', '--config', cfg, '--rpc-socket', sock, '--run-dir', join(dir, 'run'), '--log-level', 'error'], { stdio: 'ignore' });
  for (let i = 0; i < 300 && !existsSync(sock); i++) {
    if (child.exitCode !== null) throw new Error('daemon exited at start');
    await sleep(100);
  }
  return { child, rpc: await RpcClient.connect(sock), sock };
}

function dataFile(name: string): string {
  const p = join(DIR, name);
  if (!existsSync(p) || statSync(p).size !== SIZE) execFileSync('dd', ['if=/dev/urandom', `of=${p}`, 'bs=1M', `count=${SIZE >> 20}`, 'oflag=direct', 'status=none']);
  return p;
}

function mean(figs: Figure[]): Figure {
  const avg = (k: keyof Figure) => figs.reduce((s, f) => s + f[k], 0) / figs.length;
  return { iops: Math.round(avg('iops')), lat_avg_us: avg('lat_avg_us'), lat_p99_us: avg('lat_p99_us') };
}

type Mode = 'none' | 'bulk' | 'converged';

async function phaseOf(d: Daemon, name: string): Promise<{ phase: string; dirty_granules: number }> {
  return ((await d.rpc.call('migration_get_status', { name })) as Array<{ phase: string; dirty_granules: number }>)[0];
}

/**
 * One perf run on `kind`'s source while a job is (or is not) tracking it:
 * - bulk: the job's bulk pass throttled to 1 MiB/s, so nearly every granule is still dirty and the
 *   figure is the filter's own cost;
 * - converged: the job first copies everything (no writer), then the workload dirties granules that an
 *   unthrottled mirror copies again at once, competing with it for the daemon's thread and the disk.
 */
async function perfWith(d: Daemon, kind: string, mode: Mode, seconds: number, dir: string): Promise<Figure> {
  if (mode !== 'none') {
    await d.rpc.call('migration_start', { name: 'bench', source_bdev: `${kind}_src`, target_bdev: `${kind}_dst`, bitmap_path: join(dir, `${kind}-${mode}.bitmap`), ...(mode === 'bulk' ? { rate_limit_mib_per_s: 1 } : {}) });
    while (mode === 'converged' && (await phaseOf(d, 'bench')).phase !== 'converged') await sleep(50);
  }
  try {
    return await blockworkPerf(['--rpc-socket', d.sock, '-b', `${kind}_src`, '-q', '32', '-o', '4096', '-w', 'randwrite', '-t', String(seconds)]);
  } finally {
    if (mode !== 'none') await d.rpc.call('migration_cancel', { name: 'bench' });
  }
}

/** Seconds from migration_start to the end of the first pass with nothing dirty (no writer). */
async function mirrorSeconds(d: Daemon, dir: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  await d.rpc.call('migration_start', { name: 'copy', source_bdev: 'aio_src', target_bdev: 'aio_dst', bitmap_path: join(dir, 'copy.bitmap') });
  for (;;) {
    const s = await phaseOf(d, 'copy');
    if (s.phase !== 'bulk' && s.dirty_granules === 0) break;
    await sleep(20);
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await d.rpc.call('migration_cancel', { name: 'copy' });
  return secs;
}

function ddSeconds(src: string, dst: string): number {
  const t0 = process.hrtime.bigint();
  execFileSync('dd', [`if=${src}`, `of=${dst}`, 'bs=1M', 'oflag=direct', 'status=none']);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const rate = (secs: number): Figure => ({ iops: Math.round(SIZE / 2 ** 20 / secs), lat_avg_us: 0, lat_p99_us: 0 });

/**
 * The cost of write tracking: `blockwork perf` randwrite 4K QD32 inside a daemon on a malloc and an
 * aio source, with no job and with a job in its bulk or converged phase (see perfWith); and the mirror's copy rate against `dd bs=1M oflag=direct` of the same file.
 */
export async function benchMigration(seconds: number, rounds: number): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'bw-mig-bench-'));
  const src = dataFile('blockwork-mig-src.img');
  const dst = dataFile('blockwork-mig-dst.img');
  const cfg = join(dir, 'cfg.json');
  const blocks = SIZE / 4096;
  writeFileSync(cfg, JSON.stringify({
    plugins: ['@blockwork/bdev-aio', '@blockwork/migration'],
    subsystems: [{ subsystem: 'bdev', config: [
      { method: 'bdev_malloc_create', params: { name: 'malloc_src', num_blocks: blocks, block_size: 4096 } },
      { method: 'bdev_malloc_create', params: { name: 'malloc_dst', num_blocks: blocks, block_size: 4096 } },
      { method: 'bdev_aio_create', params: { name: 'aio_src', filename: src, block_size: 4096 } },
      { method: 'bdev_aio_create', params: { name: 'aio_dst', filename: dst, block_size: 4096 } },
    ] }],
  }));
  const d = await startDaemon(dir, cfg);
  try {
    const rows: Row[] = [];
    const figs = new Map<string, Figure[]>();
    const push = (k: string, f: Figure) => figs.set(k, [...(figs.get(k) ?? []), f]);
    const copy: number[] = [];
    const dd: number[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const kind of ['malloc', 'aio']) {
        // Alternate the order round by round, so a drift in machine load falls on both sides.
        const modes: Mode[] = round % 2 === 0 ? ['none', 'bulk', 'converged'] : ['converged', 'bulk', 'none'];
        for (const mode of modes) push(`${kind} ${mode}`, await perfWith(d, kind, mode, seconds, dir));
      }
      dd.push(ddSeconds(src, dst));
      copy.push(await mirrorSeconds(d, dir));
    }
    for (const kind of ['malloc', 'aio']) {
      const none = mean(figs.get(`${kind} none`)!);
      for (const mode of ['bulk', 'converged'] as const) {
        const row: Row = {
          case: `${kind} randwrite 4K QD32, ${mode === 'bulk' ? 'tracked, bulk pass at 1 MiB/s' : 'tracked, converged, unthrottled mirror'}`,
          ours: mean(figs.get(`${kind} ${mode}`)!), peer: none, peerName: 'same bdev, no job', metric: 'iops',
          target: '≥ 0.9',
        };
        printRow(row);
        rows.push(row);
      }
    }
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const row: Row = { case: `aio mirror of ${SIZE >> 20} MiB, MiB/s in the IOPS columns`, ours: rate(avg(copy)), peer: rate(avg(dd)), peerName: 'dd bs=1M oflag=direct', metric: 'iops' };
    printRow(row);
    rows.push(row);
    record('Migration: tracking cost and copy rate',
      `One daemon (\`blockwork perf --rpc-socket\`), ${SIZE >> 20} MiB malloc and aio (O_DIRECT, ${DIR}) bdevs, 4 KiB blocks, 64 KiB granules, ${seconds} s per run, ${rounds} rounds averaged. The peer of a tracking row is the same bdev with no migration job in the same round. The copy row times migration_start until the first pass leaves nothing dirty (no writer), against dd of the same file.`,
      rows);
    return rows;
  } finally {
    d.rpc.close();
    d.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}
