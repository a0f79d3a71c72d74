import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const REPO = resolve(__dirname, '../../../..');
const BIN = join(REPO, 'packages/cli/bin/blockwork.js');

export interface Figure {
  iops: number;
  lat_avg_us: number;
  lat_p99_us: number;
}

/** Runs `blockwork perf --json` in its own process, as a user would. */
export async function blockworkPerf(args: string[]): Promise<Figure> {
  const { stdout } = await run(process.execPath, [BIN, 'perf', '--json', ...args], { maxBuffer: 1 << 20, env: { ...process.env, BLOCKWORK_LOG_LEVEL: 'error' } });
  const r = JSON.parse(stdout) as { iops: number; errors: number; lat_us: { avg: number; p99: number } };
  if (r.errors > 0) throw new Error(`blockwork perf reported ${r.errors} errors`);
  return { iops: r.iops, lat_avg_us: r.lat_us.avg, lat_p99_us: r.lat_us.p99 };
}

/**
 * Runs fio with JSON output; one job, numbers of its read or write side. The average latency is
 * fio's clat (submission to completion, without the submit call itself) unless `avg` is 'lat':
 * slat + clat, from before the submit call to the reap, which is the span `blockwork perf` times.
 * p99 is always clat's (fio keeps percentiles for clat only); `clat_avg_us` is clat's mean either way.
 */
export async function fio(args: string[], avg: 'clat' | 'lat' = 'clat'): Promise<Figure & { clat_avg_us: number }> {
  const { stdout } = await run('fio', ['--output-format=json', '--name=bench', '--group_reporting', ...args], { maxBuffer: 16 << 20 });
  type Side = { iops: number; clat_ns: { mean: number; percentile?: Record<string, number> }; lat_ns: { mean: number } };
  const job = (JSON.parse(stdout) as { jobs: Array<Record<string, Side>> }).jobs[0];
  const side = job.read.iops >= job.write.iops ? job.read : job.write;
  const mean = avg === 'lat' ? side.lat_ns.mean : side.clat_ns.mean;
  return {
    iops: Math.round(side.iops), lat_avg_us: mean / 1000, lat_p99_us: (side.clat_ns.percentile?.['99.000000'] ?? 0) / 1000,
    clat_avg_us: side.clat_ns.mean / 1000,
  };
}

export function haveFio(): boolean {
  return ['/usr/bin/fio', '/usr/local/bin/fio'].some((p) => existsSync(p));
}

export function machine(): string {
  const model = cpus()[0]?.model ?? 'unknown CPU';
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return `${cpus().length} × ${model}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Linux ${release()}, Node ${process.version}, load ${load} at start`;
}

export interface Row {
  case: string;
  ours: Figure;
  peer: Figure;
  peerName: string;
  /** 'iops' compares IOPS (ours/peer), 'latency' compares average latency (ours/peer, lower is better). */
  metric: 'iops' | 'latency';
  target?: string;
}

export function ratio(r: Row): number {
  return r.metric === 'iops' ? r.ours.iops / r.peer.iops : r.ours.lat_avg_us / r.peer.lat_avg_us;
}

export function printRow(r: Row): void {
  const f = (x: Figure) => `${x.iops.toLocaleString('en-US')} IOPS, avg ${x.lat_avg_us.toFixed(1)} us, p99 ${x.lat_p99_us.toFixed(1)} us`;
  console.log(`${r.case}\n  blockwork: ${f(r.ours)}\n  ${r.peerName}: ${f(r.peer)}\n  ratio (${r.metric === 'iops' ? 'IOPS ours/peer' : 'avg latency ours/peer'}): ${ratio(r).toFixed(3)}${r.target ? `  target ${r.target}` : ''}`);
}

/** Replaces the section `title` of docs/benchmarks.md with the latest table (keeps other sections). */
export function record(title: string, intro: string, rows: Row[]): void {
  const path = join(REPO, 'docs/benchmarks.md');
  const header = '| case | blockwork IOPS | peer | peer IOPS | blockwork avg / p99 (us) | peer avg / p99 (us) | ratio | target |\n|---|---|---|---|---|---|---|---|';
  const lines = rows.map((r) => `| ${r.case} | ${r.ours.iops.toLocaleString('en-US')} | ${r.peerName} | ${r.peer.iops.toLocaleString('en-US')} | ${r.ours.lat_avg_us.toFixed(1)} / ${r.ours.lat_p99_us.toFixed(1)} | ${r.peer.lat_avg_us.toFixed(1)} / ${r.peer.lat_p99_us.toFixed(1)} | ${ratio(r).toFixed(3)} (${r.metric}) | ${r.target ?? ''} |`);
  const section = `## ${title}\n\n${intro}\n\nMachine: ${machine()}. Run ${new Date().toISOString()}.\n\n${header}\n${lines.join('\n')}\n`;
  let doc = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n\nWritten by `npm run bench`; each section is replaced by the latest run of that benchmark. Every figure has its peer from the same run.\n\n';
  const start = doc.indexOf(`## ${title}\n`);
  if (start >= 0) {
    const next = doc.indexOf('\n## ', start + 1);
    doc = doc.slice(0, start) + section + (next >= 0 ? doc.slice(next + 1) : '');
  } else {
    doc = `${doc.trimEnd()}\n\n${section}`;
  }
  writeFileSync(path, doc);
}
