import t from 'tap';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'node:net';

const BIN = resolve(__dirname, '../bin/blockwork.js');
const exec = promisify(execFile);
const cli = (...args: string[]) => exec(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, BLOCKWORK_LOG_LEVEL: 'error' } });

function shortDir(t: { teardown(fn: () => void): void }): string {
  // Unix socket paths must stay under 107 bytes: tap's fixture dirs are too deep.
  const dir = mkdtempSync(join(tmpdir(), 'bw-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function answers(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(sock, () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

async function startDaemon(t: { teardown(fn: () => unknown): void }, sock: string, ...args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, 'start', '--rpc-socket', sock, '--run-dir', join(sock, '..', 'run'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c) => { err += c; });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  // Wait until it answers: after a SIGKILL the old socket file is still there, refusing connections.
  for (let i = 0; i < 200 && !(await answers(sock)); i++) {
    if (child.exitCode !== null) throw new Error(`daemon exited: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return child;
}

t.test('quick start: blockwork start with the embedded config, then rpc bdev_get_bdevs and bdev list', async (t) => {
  const sock = join(shortDir(t), 'bw.sock');
  const daemon = await startDaemon(t, sock);
  t.equal(statSync(sock).mode & 0o777, 0o600, 'RPC socket is owner-only');
  const bdevs = JSON.parse((await cli('rpc', 'bdev_get_bdevs', '-r', sock)).stdout) as Array<{ name: string; product_name: string; num_blocks: number }>;
  t.same(bdevs.map((b) => [b.name, b.product_name, b.num_blocks]), [['Malloc0', 'Malloc disk', 131072]]);
  t.equal(JSON.parse((await cli('rpc', 'bdev_null_create', '-r', sock, '--name', 'N0', '--num_blocks', '64', '--block_size', '4096')).stdout), 'N0');
  t.equal(JSON.parse((await cli('rpc', 'bdev_passthru_create', '-r', sock, '--json', '{"name":"P0","base_bdev_name":"N0"}')).stdout), 'P0');
  const table = (await cli('bdev', 'list', '-r', sock)).stdout;
  t.match(table, /^NAME\s+PRODUCT\s+BLOCK\s+BLOCKS\s+SIZE\s+CLAIMED/);
  t.match(table, /Malloc0\s+Malloc disk\s+512\s+131072\s+64 MiB\s+no/);
  t.match(table, /N0\s+Null disk\s+4096\s+64\s+256 KiB\s+yes/);
  const saved = JSON.parse((await cli('rpc', 'save_config', '-r', sock)).stdout) as { subsystems: Array<{ subsystem: string; config: Array<{ method: string }> }> };
  t.same(saved.subsystems[0].config.map((e) => e.method), ['bdev_malloc_create', 'bdev_null_create', 'bdev_passthru_create', 'bdev_wait_for_examine']);
  const bad = await cli('rpc', 'bdev_malloc_create', '-r', sock, '--name', 'Malloc0', '--num_blocks', '8', '--block_size', '512').catch((e: { stderr: string; code: number }) => e);
  t.match(bad, { code: 1, stderr: /bdev_malloc_create: .*'Malloc0' already exists \(code -17\)/ });
  const perf = JSON.parse((await cli('perf', '-r', sock, '-b', 'Malloc0', '-w', 'verify', '-q', '8', '-t', '1', '--json')).stdout) as { ios: number; errors: number; miscompares: number };
  t.ok(perf.ios > 100, `perf inside the daemon ran ${perf.ios} I/Os`);
  t.equal(perf.errors + perf.miscompares, 0, 'verify found no error and no miscompare');
  const exited = new Promise((r) => daemon.once('exit', (code) => r(code)));
  daemon.kill('SIGTERM');
  t.equal(await exited, 0, 'clean exit on SIGTERM');
  t.notOk(existsSync(sock), 'socket removed on shutdown');
});

t.test('a daemon started from a saved config reproduces bdev_get_bdevs', async (t) => {
  const dir = shortDir(t);
  const cfg = join(dir, 'cfg.json');
  writeFileSync(cfg, JSON.stringify({ subsystems: [{ subsystem: 'bdev', config: [
    { method: 'bdev_malloc_create', params: { name: 'M', num_blocks: 256, block_size: 512 } },
    { method: 'bdev_null_create', params: { name: 'N', num_blocks: 64, block_size: 4096 } },
    { method: 'bdev_passthru_create', params: { name: 'P', base_bdev_name: 'M' } },
  ] }] }));
  const s1 = join(dir, 'a.sock');
  const d1 = await startDaemon(t, s1, '--config', cfg);
  const saved = join(dir, 'saved.json');
  writeFileSync(saved, (await cli('rpc', 'save_config', '-r', s1)).stdout);
  const before = (await cli('rpc', 'bdev_get_bdevs', '-r', s1)).stdout;
  d1.kill('SIGTERM');
  const s2 = join(dir, 'b.sock');
  await startDaemon(t, s2, '--config', saved);
  t.equal((await cli('rpc', 'bdev_get_bdevs', '-r', s2)).stdout, before);
});

t.test('start fails clearly on a bad config and a taken socket', async (t) => {
  const dir = shortDir(t);
  writeFileSync(join(dir, 'bad.json'), '{"plugins": ["@nobody/nothing"]}');
  const r = await cli('start', '--config', join(dir, 'bad.json'), '--rpc-socket', join(dir, 'x.sock')).catch((e: { stderr: string; code: number }) => e);
  t.match(r, { code: 1, stderr: /plugin '@nobody\/nothing' could not be resolved/ });
  const sock = join(dir, 'y.sock');
  await startDaemon(t, sock);
  const r2 = await cli('start', '--rpc-socket', sock).catch((e: { stderr: string; code: number }) => e);
  t.match(r2, { code: 1, stderr: /in use by another process/ });
});

t.test('blockwork perf -w verify passes in-process on aio and uring bdevs', async (t) => {
  const dir = shortDir(t);
  const img = join(dir, 'disk.img');
  writeFileSync(img, Buffer.alloc(16 << 20));
  const cfg = join(dir, 'perf.json');
  writeFileSync(cfg, JSON.stringify({ plugins: ['@blockwork/bdev-aio', '@blockwork/bdev-uring'], subsystems: [{ subsystem: 'bdev', config: [
    { method: 'bdev_aio_create', params: { name: 'aio0', filename: img, block_size: 4096 } },
    { method: 'bdev_uring_create', params: { name: 'uring0', filename: img, block_size: 4096 } },
  ] }] }));
  for (const b of ['aio0', 'uring0']) {
    const r = JSON.parse((await cli('perf', '--config', cfg, '-b', b, '-w', 'verify', '-q', '16', '-t', '2', '--json')).stdout) as { ios: number; errors: number; miscompares: number };
    t.ok(r.ios > 100, `${b}: ${r.ios} verified I/Os`);
    t.equal(r.errors, 0, `${b}: no errors`);
    t.equal(r.miscompares, 0, `${b}: no miscompares`);
  }
});

t.test('--state-file: a daemon killed with SIGKILL comes back with the bdevs created over RPC', async (t) => {
  const dir = shortDir(t);
  const sock = join(dir, 's.sock');
  const state = join(dir, 'state.json');
  const d1 = await startDaemon(t, sock, '--state-file', state);
  await cli('rpc', 'bdev_null_create', '-r', sock, '--name', 'N1', '--num_blocks', '128', '--block_size', '512');
  await cli('rpc', 'bdev_passthru_create', '-r', sock, '--name', 'P1', '--base_bdev_name', 'N1');
  await cli('rpc', 'bdev_malloc_delete', '-r', sock, '--name', 'Malloc0');
  const before = (await cli('rpc', 'bdev_get_bdevs', '-r', sock)).stdout;
  t.equal(statSync(state).mode & 0o777, 0o600, 'state file is owner-only');
  const gone = new Promise((r) => d1.once('exit', r));
  d1.kill('SIGKILL');
  await gone;
  await startDaemon(t, sock, '--state-file', state);
  t.equal((await cli('rpc', 'bdev_get_bdevs', '-r', sock)).stdout, before, 'same bdevs, uuids and claims after the crash');
});
