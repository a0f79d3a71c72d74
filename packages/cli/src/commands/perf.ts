import { createLogger, Daemon, PERF_WORKLOADS, PerfJob, RpcClient, type PerfProgress, type PerfResult } from '@blockwork/core';
import { dirname } from 'node:path';
import type { Command } from '../command';
import { fail } from '../command';

function progressLine(p: PerfProgress): void {
  if (!process.stderr.isTTY) return;
  process.stderr.write(`\r${p.elapsed.toFixed(1)} s  ${Math.round(p.iops).toLocaleString('en-US')} IOPS  ${p.mib_per_s.toFixed(1)} MiB/s   `);
}

function summary(r: PerfResult): string {
  const l = r.lat_us;
  return [
    `${r.bdev}: ${r.workload} ${r.io_size} B, QD${r.queue_depth}, ${r.seconds} s`,
    `  IOPS ${r.iops.toLocaleString('en-US')}   MiB/s ${r.mib_per_s}`,
    `  latency (us): avg ${l.avg}  p50 ${l.p50}  p99 ${l.p99}  p99.9 ${l.p999}`,
    `  errors ${r.errors}${r.workload === 'verify' ? `   miscompares ${r.miscompares}` : ''}`,
  ].join('\n');
}

interface PerfArgs {
  bdev: string;
  q: number;
  o: number;
  w: (typeof PERF_WORKLOADS)[number];
  M: number;
  t: number;
}

async function inProcess(configPath: string, a: PerfArgs): Promise<PerfResult> {
  const daemon = await Daemon.start({
    configPath, rpcSocket: null, logger: createLogger(process.env.BLOCKWORK_LOG_LEVEL ?? 'warn'),
    pluginSearchDirs: [dirname(require.resolve('@blockwork/core')), __dirname],
  });
  try {
    const job = new PerfJob(daemon.layer, { bdev: a.bdev, queueDepth: a.q, ioSize: a.o, workload: a.w, rwMixRead: a.M, timeSec: a.t });
    return await job.run(progressLine);
  } finally {
    await daemon.stop();
  }
}

async function viaRpc(socket: string, a: PerfArgs): Promise<PerfResult> {
  const client = await RpcClient.connect(socket);
  try {
    const id = await client.call('bdev_perf_start', { bdev: a.bdev, queue_depth: a.q, io_size: a.o, rw: a.w, rwmixread: a.M, time_in_sec: a.t });
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const s = (await client.call('bdev_perf_get_status', { id })) as { done: boolean; result?: PerfResult; progress?: PerfProgress };
      if (s.done) return s.result!;
      progressLine(s.progress!);
    }
  } finally {
    client.close();
  }
}

export const perf: Command = {
  command: 'perf',
  describe: 'Run a bdevperf-style workload: in its own process from --config, or inside a running daemon via --rpc-socket',
  builder: (y) =>
    y
      .option('config', { alias: 'c', type: 'string', describe: 'Config file: run in this process against a bdev it creates' })
      .option('rpc-socket', { alias: 'r', type: 'string', describe: 'Run inside the daemon listening here (its bdevs and stacks)' })
      .option('bdev', { alias: 'b', type: 'string', demandOption: true, describe: 'Bdev name' })
      .option('q', { alias: 'queue-depth', type: 'number', default: 32, describe: 'Queue depth' })
      .option('o', { alias: 'io-size', type: 'number', default: 4096, describe: 'I/O size in bytes' })
      .option('w', { alias: 'workload', choices: PERF_WORKLOADS, default: 'randread' as const, describe: 'Workload' })
      .option('M', { alias: 'rwmixread', type: 'number', default: 50, describe: 'Read percentage for randrw' })
      .option('t', { alias: 'time', type: 'number', default: 10, describe: 'Seconds to run' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the summary as one JSON object' })
      .check((a) => {
        if (!a.config === !a['rpc-socket']) throw new Error('give exactly one of --config or --rpc-socket');
        return true;
      }),
  async handler(argv) {
    const a = argv as unknown as PerfArgs & { config?: string; 'rpc-socket'?: string; json: boolean };
    try {
      const r = a.config ? await inProcess(a.config, a) : await viaRpc(a['rpc-socket']!, a);
      if (process.stderr.isTTY) process.stderr.write('\n');
      process.stdout.write(`${a.json ? JSON.stringify(r) : summary(r)}\n`);
      if (r.errors > 0 || r.miscompares > 0) process.exitCode = 1;
    } catch (e) {
      fail((e as Error).message);
    }
  },
};
