import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { rpcWhenListening, tempDir } from './fixtures/env';

const BIN = resolve(__dirname, '../../cli/bin/blockwork.js');
const exec = promisify(execFile);

t.test('blockwork migrate starts a job, prints plain progress off a TTY, and completes it', async (t) => {
  const dir = tempDir(t);
  const sock = join(dir, 's');
  const cfg = join(dir, 'cfg.json');
  writeFileSync(cfg, JSON.stringify({
    plugins: ['@blockwork/migration'],
    subsystems: [{ subsystem: 'bdev', config: [
      { method: 'bdev_malloc_create', params: { name: 'A', num_blocks: 65536, block_size: 512 } },
      { method: 'bdev_malloc_create', params: { name: 'B', num_blocks: 65536, block_size: 512 } },
    ] }],
  }));
  const d = spawn(process.execPath, [BIN, 'start', '-c', cfg, '-r', sock, '--run-dir', join(dir, 'run'), '--log-level', 'error'], { stdio: 'ignore' });
  t.teardown(() => { if (d.exitCode === null) d.kill('SIGKILL'); });
  (await rpcWhenListening(sock, d, 20000, 'daemon', () => 'see its exit code')).close();
  const { stdout, stderr } = await exec(process.execPath, [BIN, 'migrate', '-r', sock, '--name', 'm', '--source', 'A', '--target', 'B', '--rate-limit', '16', '--complete'], { encoding: 'utf8' });
  t.match(stderr, /^bulk +\d+\.\d MiB copied +\d+\/512 dirty/m, 'plain progress lines, one per second');
  t.match(stderr, /final pass took \d+ ms/);
  t.match(stdout, /^m: completed +\d+\.\d MiB copied +0\/512 dirty/);
  const again = await exec(process.execPath, [BIN, 'migrate', '-r', sock, '--name', 'm', '--source', 'A', '--target', 'B'], { encoding: 'utf8' }).catch((e: { code: number; stderr: string }) => e);
  t.match(again, { code: 1, stderr: /migration 'm' already exists/ });
});
