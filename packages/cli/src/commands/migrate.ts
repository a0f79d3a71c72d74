import { RpcClient } from '@blockwork/core';
import type { Command } from '../command';
import { fail } from '../command';

/** The fields of migration_get_status this command shows. */
interface MigrationStatus {
  phase: string;
  bytes_copied: number;
  dirty_granules: number;
  total_granules: number;
  rate_mib_per_s: number;
  eta_s: number | null;
  error?: string;
}

const BAR = 30;

/** One progress line: a bar of clean granules on a TTY, plain text otherwise. */
function line(s: MigrationStatus, tty: boolean): string {
  const clean = s.total_granules > 0 ? 1 - s.dirty_granules / s.total_granules : 1;
  const text = `${s.phase.padEnd(10)} ${(s.bytes_copied / 2 ** 20).toFixed(1)} MiB copied  ${s.dirty_granules}/${s.total_granules} dirty  ` +
    `${s.rate_mib_per_s.toFixed(1)} MiB/s  eta ${s.eta_s === null ? '?' : `${s.eta_s} s`}`;
  if (!tty) return text;
  const n = Math.round(clean * BAR);
  return `[${'#'.repeat(n)}${'-'.repeat(BAR - n)}] ${(clean * 100).toFixed(0).padStart(3)}% ${text}`;
}

interface MigrateArgs {
  'rpc-socket': string;
  name: string;
  source: string;
  target: string;
  'granularity-kib'?: number;
  'rate-limit'?: number;
  bitmap?: string;
  complete: boolean;
}

/** Polls until the job converges (or fails); shows progress on stderr. */
async function follow(client: RpcClient, name: string, until: (s: MigrationStatus) => boolean): Promise<MigrationStatus> {
  const tty = process.stderr.isTTY === true;
  let last = 0;
  for (;;) {
    const s = ((await client.call('migration_get_status', { name })) as MigrationStatus[])[0];
    if (tty) process.stderr.write(`\r${line(s, true)}\x1b[K`);
    else if (Date.now() - last >= 1000) {
      process.stderr.write(`${line(s, false)}\n`);
      last = Date.now();
    }
    if (until(s)) {
      if (tty) process.stderr.write('\n');
      return s;
    }
    await new Promise((r) => setTimeout(r, tty ? 200 : 250));
  }
}

export const migrate: Command = {
  command: 'migrate',
  describe: 'Mirror a bdev to another inside a running daemon (migration_start), show progress until it converges, optionally complete it',
  builder: (y) =>
    y
      .option('rpc-socket', { alias: ['r', 's'], type: 'string', default: '/var/tmp/blockwork.sock', describe: 'RPC socket of the daemon' })
      .option('name', { alias: 'n', type: 'string', demandOption: true, describe: 'Migration job name' })
      .option('source', { type: 'string', demandOption: true, describe: 'Source bdev (keeps serving its users; every write is tracked)' })
      .option('target', { type: 'string', demandOption: true, describe: 'Target bdev (claimed by the job)' })
      .option('granularity-kib', { type: 'number', describe: 'KiB per dirty-bitmap bit (default 64)' })
      .option('rate-limit', { type: 'number', describe: 'Copy rate limit in MiB/s (default unlimited)' })
      .option('bitmap', { type: 'string', describe: 'Dirty bitmap file; an existing one is resumed (default under the daemon run directory)' })
      .option('complete', { type: 'boolean', default: false, describe: 'Once converged, run the final pass (writes held briefly) and finish' }),
  async handler(argv) {
    const a = argv as unknown as MigrateArgs;
    let client: RpcClient | null = null;
    try {
      client = await RpcClient.connect(a['rpc-socket']);
      const params: Record<string, unknown> = { name: a.name, source_bdev: a.source, target_bdev: a.target };
      if (a['granularity-kib'] !== undefined) params.granularity_kib = a['granularity-kib'];
      if (a['rate-limit'] !== undefined) params.rate_limit_mib_per_s = a['rate-limit'];
      if (a.bitmap !== undefined) params.bitmap_path = a.bitmap;
      await client.call('migration_start', params);
      const s = await follow(client, a.name, (x) => ['converged', 'completed', 'failed', 'cancelled'].includes(x.phase));
      if (s.phase === 'failed') throw new Error(`migration ${a.name} failed: ${s.error ?? 'unknown error'}`);
      if (a.complete && s.phase === 'converged') {
        const t0 = performance.now();
        await client.call('migration_complete', { name: a.name });
        process.stderr.write(`final pass took ${Math.round(performance.now() - t0)} ms\n`);
      }
      const end = ((await client.call('migration_get_status', { name: a.name })) as MigrationStatus[])[0];
      process.stdout.write(`${a.name}: ${line(end, false)}\n`);
    } catch (e) {
      fail((e as Error).message);
    } finally {
      client?.close();
    }
  },
};
