import t from 'tap';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type IoChannel, io, RpcClient } from '@blockwork/core';
import { setup } from './fixtures/env';
import { tempDir } from './fixtures/qsd';

/**
 * The host-side view of hot upgrade: this process is the front end (bdev_virtio with
 * reconnect_ms 5, INFLIGHT_SHMFD negotiated) of a Blockwork daemon running as a child process
 * (server-mode controller on an aio bdev, state file). A QD32 random read/write load with
 * verification runs while the daemon is SIGKILLed and restarted KILLS times (in-flight requests
 * resubmitted from the inflight region) and replaced by `blockwork upgrade` UPGRADES times.
 * Every read is checked against the last completed write of its block (no two requests touch
 * one block at a time). The stall of a cycle is the longest gap between two completions in its
 * window. `blockwork perf` reports percentiles, not the longest gap, hence this loop.
 */
const UPGRADES = Number(process.env.BW_VIRTIO_UPGRADES ?? 10);
const KILLS = Number(process.env.BW_VIRTIO_KILLS ?? 3);
const BIN = join(__dirname, '../../cli/bin/blockwork.js');
const BS = 4096;
const BLOCKS = 16384;
const QD = 32;
const GAP_MS = 2;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, f: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await Promise.resolve().then(f).catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function expected(buf: Buffer, block: number, gen: number): Buffer {
  buf.fill(gen === 0 ? 0 : (block + gen) & 0xff);
  if (gen !== 0) {
    buf.writeUInt32LE(block, 0);
    buf.writeUInt32LE(gen, 4);
  }
  return buf;
}

/** QD32 verified random read/write over the whole disk; completion gaps recorded (host clock). */
class VerifiedLoad {
  completed = 0;
  errors = 0;
  miscompares = 0;
  readonly gaps: Array<{ end: number; ms: number }> = [];
  private readonly committed = new Uint32Array(BLOCKS);
  private readonly nextGen = new Uint32Array(BLOCKS);
  private readonly busy = new Uint8Array(BLOCKS);
  private last = performance.now();
  private running = true;
  private active = 0;
  private stopped: () => void = () => {};

  constructor(private readonly ch: IoChannel) {
    for (let i = 0; i < QD; i++) void this.slot(Buffer.alloc(BS), Buffer.alloc(BS));
  }

  private async slot(buf: Buffer, want: Buffer): Promise<void> {
    this.active++;
    while (this.running) {
      let b = Math.floor(Math.random() * BLOCKS);
      while (this.busy[b]) b = (b + 1) % BLOCKS;
      this.busy[b] = 1;
      try {
        if (Math.random() < 0.5) {
          const g = ++this.nextGen[b];
          await io.write(this.ch, expected(buf, b, g), b, 1);
          this.committed[b] = g;
        } else {
          await io.read(this.ch, buf, b, 1);
          if (!buf.equals(expected(want, b, this.committed[b]))) this.miscompares++;
        }
      } catch {
        this.errors++;
      }
      this.busy[b] = 0;
      this.completed++;
      const now = performance.now();
      if (now - this.last > GAP_MS) this.gaps.push({ end: Date.now(), ms: Math.round(now - this.last) });
      this.last = now;
    }
    if (--this.active === 0) this.stopped();
  }

  /** The longest completion gap overlapping [from, to] (host ms), 0 if none above GAP_MS. */
  stallIn(from: number, to: number): number {
    return this.gaps.filter((g) => g.end >= from && g.end - g.ms <= to).reduce((m, g) => Math.max(m, g.ms), 0);
  }

  /** Resolves once `n` more requests completed. */
  progressed(n = 2000): Promise<true> {
    const target = this.completed + n;
    return until('I/O to continue through the front end', 60_000, () => (this.completed >= target ? true : undefined));
  }

  stop(): Promise<void> {
    this.running = false;
    return this.active === 0 ? Promise.resolve() : new Promise((r) => (this.stopped = r));
  }
}

function stats(xs: number[]): string {
  if (xs.length === 0) return 'none';
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return `n=${s.length} min=${s[0]} median=${q(0.5)} p90=${q(0.9)} max=${s[s.length - 1]} ms`;
}

t.setTimeout(15 * 60_000);

t.test(`bdev_virtio (reconnect_ms 5) at QD32 follows ${KILLS} SIGKILL+restarts and ${UPGRADES} upgrades of its back end with no error`, async (t) => {
  const dir = tempDir(t);
  const sock = join(dir, 'rpc.sock');
  const logFile = join(dir, 'daemon.log');
  const disk = join(dir, 'disk.img');
  writeFileSync(disk, Buffer.alloc(BLOCKS * BS));
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({
    plugins: ['@blockwork/bdev-aio', '@blockwork/vhost-blk'],
    subsystems: [
      { subsystem: 'bdev', config: [{ method: 'bdev_aio_create', params: { name: 'aio0', filename: disk, block_size: BS } }] },
      { subsystem: 'vhost_blk', config: [{ method: 'vhost_create_blk_controller', params: { ctrlr: 'vhost.0', dev_name: 'aio0' } }] },
    ],
  }));
  let child: ChildProcess | null = null;
  let lastPid = -1;
  const start = async (): Promise<ChildProcess> => {
    const out = openSync(logFile, 'a');
    const c = spawn(process.execPath, [BIN, 'start', '--config', config, '--state-file', join(dir, 'state.json'), '--rpc-socket', sock, '--socket-dir', dir, '--run-dir', dir, '--log-level', 'info'], { stdio: ['ignore', out, out] });
    closeSync(out);
    const exited = new Promise<never>((_, reject) => c.once('exit', (code) => reject(new Error(`the daemon exited (${code}) before answering; see ${logFile}`))));
    exited.catch(() => {});
    await Promise.race([exited, until('the daemon to answer', 60_000, () => RpcClient.callOnce(sock, 'spdk_get_version'))]);
    return c;
  };
  t.teardown(() => {
    child?.kill('SIGKILL');
    try {
      if (lastPid > 0) process.kill(lastPid, 'SIGKILL');
    } catch {
      // gone
    }
  });
  child = await start();
  const { layer, call } = setup(t);
  t.same(await call('bdev_virtio_attach_controller', { name: 'V0', trtype: 'user', traddr: join(dir, 'vhost.0'), dev_type: 'blk', vq_count: 2, reconnect_ms: 5 }), ['V0']);
  const desc = layer.open('V0', true);
  const load = new VerifiedLoad(desc.getIoChannel());
  await load.progressed();

  const killStalls: number[] = [];
  for (let i = 0; i < KILLS; i++) {
    await sleep(200 + Math.random() * 500);
    const c = child!;
    const exited = new Promise((r) => c.once('exit', r));
    const t0 = Date.now();
    c.kill('SIGKILL');
    await exited;
    child = await start();
    await load.progressed();
    killStalls.push(load.stallIn(t0, Date.now()));
  }
  const cycleGaps: number[] = [];
  const upgrades: Array<{ oldPid: number; newPid: number }> = [];
  const pauses: number[] = [];
  for (let i = 0; i < UPGRADES; i++) {
    await sleep(200 + Math.random() * 500);
    const t0 = Date.now();
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [BIN, 'upgrade', '--rpc-socket', sock, '--log-file', logFile, '--json'], (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out)));
    });
    const r = JSON.parse(stdout) as { old_pid: number; new_pid: number; pause_ms: number | null };
    child = null; // the first upgrade replaced our own child
    lastPid = r.new_pid;
    pauses.push(r.pause_ms ?? -1);
    await load.progressed();
    cycleGaps.push(load.stallIn(t0, Date.now()));
    upgrades.push({ oldPid: r.old_pid, newPid: r.new_pid });
  }
  await load.stop();
  t.equal(load.errors, 0, `no I/O error in ${load.completed} verified requests`);
  t.equal(load.miscompares, 0, 'every read returned the last completed write');
  const log = readFileSync(logFile, 'utf8');
  t.equal((log.match(/crash recovery is not available/g) ?? []).length, 0, 'the front end negotiated INFLIGHT_SHMFD on every connection');
  t.comment(`kill+restart, longest completion gap per cycle: ${stats(killStalls)} [${killStalls.join(' ')}]`);
  // The handover: the old daemon's SIGTERM to the new daemon's session started (+500 ms for the
  // completions to resume), from the daemons' logs. The whole cycle also holds the new daemon's
  // start-up, which competes with both processes for CPU on a small host.
  const ev = log.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { pid: number; time: number; msg: string });
  const at = (pid: number, msg: string, after: number) => ev.find((e) => e.pid === pid && e.msg === msg && e.time >= after)?.time;
  const upStalls: number[] = [];
  for (const u of upgrades) {
    const term = at(u.oldPid, 'shutting down', 0);
    const started = term === undefined ? undefined : at(u.newPid, 'vhost-user session started', term);
    if (term !== undefined && started !== undefined) upStalls.push(load.stallIn(term - 20, started + 500));
  }
  t.equal(upStalls.length, upgrades.length, 'every handover found in the daemon logs');
  t.comment(`upgrade, longest completion gap in the handover (SIGTERM to session started): ${stats(upStalls)} [${upStalls.join(' ')}]`);
  t.comment(`upgrade, longest completion gap in the whole cycle (with the new daemon's start-up): ${stats(cycleGaps)} [${cycleGaps.join(' ')}]`);
  t.comment(`upgrade, pause_ms reported by \`blockwork upgrade\`: ${stats(pauses)}`);
  t.comment(`sessions that resubmitted in-flight requests after a restart: ${(log.match(/recovered in-flight requests/g) ?? []).length}`);
  desc.close();
  t.equal(await call('bdev_virtio_detach_controller', { name: 'V0' }), true);
});
