import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'node:net';

const BIN = resolve(__dirname, '../bin/blockwork.js');
const exec = promisify(execFile);
const cli = (...args: string[]) => exec(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, BLOCKWORK_LOG_LEVEL: 'info' } });

function answers(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(sock, () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

t.test('blockwork upgrade: the new daemon takes the RPC socket, the state and the vhost socket; the old one exits', async (t) => {
  t.setTimeout(180_000);
  const dir = mkdtempSync(join(tmpdir(), 'bw-up-'));
  const sock = join(dir, 's.sock');
  const state = join(dir, 'state.json');
  const log = join(dir, 'daemon.log');
  const pids: number[] = [];
  t.teardown(() => {
    for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const d1 = spawn(process.execPath, [BIN, 'start', '--rpc-socket', sock, '--run-dir', dir, '--state-file', state], { stdio: 'ignore' });
  pids.push(d1.pid!);
  for (let i = 0; i < 400 && !(await answers(sock)); i++) await new Promise((r) => setTimeout(r, 50));
  await cli('rpc', 'bdev_null_create', '-r', sock, '--name', 'N1', '--num_blocks', '128', '--block_size', '512');
  await cli('rpc', 'vhost_create_blk_controller', '-r', sock, '--ctrlr', 'vhost.0', '--dev_name', 'N1');
  const before = (await cli('rpc', 'bdev_get_bdevs', '-r', sock)).stdout;
  const vhostIno = lstatSync(join(dir, 'vhost.0')).ino;

  const { stdout } = await cli('upgrade', '-r', sock, '--log-file', log, '--json');
  const r = JSON.parse(stdout) as { old_pid: number; new_pid: number; state_file: string; drain_ms: number; pause_ms: number | null; sessions: Record<string, number> };
  pids.push(r.new_pid);
  t.equal(r.old_pid, d1.pid, 'the old daemon was the one we started');
  t.not(r.new_pid, d1.pid);
  t.equal(r.state_file, state);
  t.same(r.sessions, { 'vhost.0': 0 });
  t.equal(r.pause_ms, null, 'no sessions, no pause to measure');
  t.notOk(alive(r.old_pid), 'the old daemon exited');
  t.ok(alive(r.new_pid), 'the new daemon runs');
  t.equal((await cli('rpc', 'bdev_get_bdevs', '-r', sock)).stdout, before, 'same bdevs after the upgrade');
  t.ok(lstatSync(join(dir, 'vhost.0')).isSocket(), 'the controller socket is there');
  t.not(lstatSync(join(dir, 'vhost.0')).ino, vhostIno, "and it is the new daemon's");
  t.match(readFileSync(log, 'utf8'), /restoring state saved by the previous run/, 'the new daemon started from the state file');

  await t.rejects(cli('upgrade', '-r', join(dir, 'nothing.sock')), /no such socket/, 'no daemon: a clear error');
  t.ok(existsSync(sock), 'the RPC socket is still served');
});
