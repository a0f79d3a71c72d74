import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RpcClient } from '@blockwork/core';
import type { MigrationStatus } from '../src/mirror-job';
import { rpcWhenListening, tempDir, until } from './fixtures/env';

// Three daemon starts and a 2 MiB/s copy: past tap's 30 s default when run from this package on a loaded machine.
t.setTimeout(300000);

const BIN = resolve(__dirname, '../../cli/bin/blockwork.js');
const MiB = 2 ** 20;
const SIZE = 8 * MiB;
const SRC_UUID = 'aaaaaaaa-0000-4000-8000-000000000001';
const DST_UUID = 'aaaaaaaa-0000-4000-8000-000000000002';

interface Daemon {
  child: ChildProcess;
  rpc: RpcClient;
}

async function startDaemon(dir: string, cfg: string): Promise<Daemon> {
  const sock = join(dir, 's');
  rmSync(sock, { force: true }); // a SIGKILLed daemon leaves its socket behind
  const child = spawn(process.execPath, [BIN, 'start', '--config', cfg, '--rpc-socket', sock, '--run-dir', join(dir, 'run'), '--log-level', 'error'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c) => { err += c; });
  return { child, rpc: await rpcWhenListening(sock, child, 20000, 'daemon', () => err) };
}

async function kill9(d: Daemon): Promise<void> {
  d.rpc.close();
  const exited = new Promise((r) => d.child.once('exit', r));
  d.child.kill('SIGKILL');
  await exited;
}

const status = async (d: Daemon) => ((await d.rpc.call('migration_get_status', { name: 'mig' })) as MigrationStatus[])[0];
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** A short burst of random 4 KiB writes to the source, inside the daemon (tracked like a guest's). */
async function dirtySome(d: Daemon): Promise<void> {
  const id = await d.rpc.call('bdev_perf_start', { bdev: 'src', rw: 'randwrite', queue_depth: 32, io_size: 4096, time_in_sec: 0.2 });
  await until(async () => ((await d.rpc.call('bdev_perf_get_status', { id })) as { done: boolean }).done, 10000, 'perf burst');
}

t.test('SIGKILL during the bulk pass and during a dirty pass; each restart resumes from the bitmap; result identical', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'src.img');
  const dst = join(dir, 'dst.img');
  writeFileSync(src, randomBytes(SIZE));
  writeFileSync(dst, Buffer.alloc(SIZE));
  const cfg = join(dir, 'cfg.json');
  writeFileSync(cfg, JSON.stringify({
    plugins: ['@blockwork/bdev-aio', '@blockwork/migration'],
    subsystems: [{ subsystem: 'bdev', config: [
      { method: 'bdev_aio_create', params: { name: 'src', filename: src, block_size: 512, uuid: SRC_UUID } },
      { method: 'bdev_aio_create', params: { name: 'dst', filename: dst, block_size: 512, uuid: DST_UUID } },
    ] }],
  }));
  const start = { name: 'mig', source_bdev: 'src', target_bdev: 'dst', granularity_kib: 4, rate_limit_mib_per_s: 2, bitmap_path: join(dir, 'mig.bitmap') };
  const total = SIZE / 4096;

  // Run 1: killed in the bulk pass, with writes going on.
  let d = await startDaemon(dir, cfg);
  t.teardown(() => { if (d.child.exitCode === null) d.child.kill('SIGKILL'); });
  t.equal(await d.rpc.call('migration_start', start), 'mig');
  await dirtySome(d);
  await until(async () => (await status(d)).bytes_copied >= 2 * MiB, 20000, '2 MiB copied');
  const s1 = await status(d);
  t.equal(s1.phase, 'bulk', `killed in the bulk pass after ${s1.bytes_copied} bytes`);
  await kill9(d);

  // Run 2: resumes the bulk pass, then killed while copying granules dirtied after it.
  d = await startDaemon(dir, cfg);
  await d.rpc.call('migration_start', start);
  const r2 = await status(d);
  t.equal(r2.resumed, true);
  t.equal(r2.phase, 'bulk', 'the bulk pass continues');
  t.ok(r2.dirty_granules < total - 256, `only ${r2.dirty_granules} of ${total} granules left to copy`);
  await until(async () => (await status(d)).phase !== 'bulk', 20000, 'bulk pass done');
  await dirtySome(d);
  const s2 = await status(d);
  t.ok(s2.dirty_granules > 0 && s2.phase !== 'bulk', `killed in a dirty pass (${s2.phase}, ${s2.dirty_granules} dirty)`);
  t.ok(s2.bytes_copied < SIZE, `run 2 copied ${s2.bytes_copied} bytes, less than a full pass (${SIZE})`);
  await kill9(d);

  // Run 3: resumes from the dirty set only, completes.
  d = await startDaemon(dir, cfg);
  await d.rpc.call('migration_start', start);
  const r3 = await status(d);
  t.equal(r3.resumed, true);
  t.ok(r3.dirty_granules > 0 && r3.dirty_granules < total, `${r3.dirty_granules} dirty granules survived the crash`);
  await until(async () => (await status(d)).phase === 'converged', 30000, 'converged');
  t.equal(await d.rpc.call('migration_complete', { name: 'mig' }), true);
  const s3 = await status(d);
  t.equal(s3.phase, 'completed');
  t.ok(s3.bytes_copied < SIZE, `run 3 copied ${s3.bytes_copied} bytes, less than a full pass`);
  await d.rpc.call('migration_cancel', { name: 'mig' });
  d.rpc.close();
  const exited = new Promise((r) => d.child.once('exit', r));
  d.child.kill('SIGTERM');
  await exited;
  t.equal(sha(dst), sha(src), 'target file identical to source file');
});
