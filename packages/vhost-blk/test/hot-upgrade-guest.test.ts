import t from 'tap';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RpcClient } from '@blockwork/core';
import { ensureGuestImage, requireGuestTools, startGuest } from '@blockwork/guest-vm';

/**
 * Crash recovery and hot upgrade against a real QEMU guest (reconnect=1, 2 queues): the daemon
 * runs as a child process with a state file; the guest loops fio (randwrite + crc32c verify and a
 * randread job, QD32, 10-ms averaged completion logs) while the host SIGKILLs and restarts the
 * daemon CYCLES times, then replaces it with `blockwork upgrade` CYCLES times. The host tells the
 * guest a phase is over through a flag block on the disk itself. One boot for everything.
 */
const CYCLES = Number(process.env.BW_UPGRADE_CYCLES ?? 20);
const BIN = join(__dirname, '../../cli/bin/blockwork.js');
const DISK_BYTES = 64 << 20;
const FLAG_OFFSET = 60 << 20;
const STALL_MS = 100;

const SCRIPT = `
cat > /tmp/job.fio <<'EOF'
[global]
filename=/dev/vda
ioengine=libaio
direct=1
bs=4k
iodepth=32
log_avg_msec=10
exitall
[w]
rw=randwrite
offset=0
size=16m
verify=crc32c
do_verify=1
verify_fatal=1
write_lat_log=/tmp/w
[r]
rw=randread
offset=32m
size=16m
time_based=1
runtime=600
write_lat_log=/tmp/r
EOF
flag() { dd if=/dev/vda bs=4096 skip=${FLAG_OFFSET / 4096} count=1 iflag=direct status=none 2>/dev/null | head -c 16; }
phase() {
  echo "phase-$1-start"
  n=0; fails=0
  while :; do
    n=$((n+1)); rm -f /tmp/w_*.log /tmp/r_*.log
    if ! fio /tmp/job.fio --output=/tmp/fio.out >/dev/null 2>&1; then fails=$((fails+1)); echo "fio-fail $1 $n"; grep -iE "err|verify|bad" /tmp/fio.out | head -20; fi
    grep -E "err= *[1-9]" /tmp/fio.out | sed "s/^/fio-err $1 /"
    g=$(cat /tmp/w_clat.*.log /tmp/r_clat.*.log 2>/dev/null | cut -d, -f1 | sort -n | awk -v m=${STALL_MS} 'NR>1 && $1-p>m {printf "%d ", $1-p} {p=$1}')
    echo "gaps $1 $n: $g"
    case "$(flag)" in *stop-$1*) break;; esac
  done
  echo "phase-$1-done runs=$n fails=$fails"
}
phase kill
phase upgrade
echo "ioerr $(dmesg | grep -cE 'I/O error|blk_update_request|is not a head|virtio.*broken')"
dmesg | grep -E 'I/O error|blk_update_request|is not a head|virtio.*broken' | head -5
echo all-done
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rpc(sock: string, method: string, params?: unknown): Promise<unknown> {
  const c = await RpcClient.connect(sock);
  try {
    return await c.call(method, params);
  } finally {
    c.close();
  }
}

async function waitFor<T>(what: string, timeoutMs: number, f: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Started sessions on vhost.0 (undefined while the daemon does not answer or none started). */
async function sessionBack(sock: string): Promise<true | undefined> {
  const [c] = (await rpc(sock, 'vhost_get_controllers', { name: 'vhost.0' })) as Array<{ sessions: Array<{ started: boolean }> }>;
  return c.sessions.some((s) => s.started) ? true : undefined;
}

/** Resolves once the daemon has completed `n` more guest I/Os than `from` (the guest is not hung). */
async function guestIo(sock: string, from = 0, n = 100): Promise<number> {
  return waitFor('guest I/O on the daemon (a guest waiting for a lost completion or interrupt sends none)', 90_000, async () => {
    const r = (await rpc(sock, 'bdev_get_iostat', { name: 'aio0' })) as { bdevs: Array<{ num_read_ops: number; num_write_ops: number }> };
    const ops = r.bdevs[0].num_read_ops + r.bdevs[0].num_write_ops;
    return ops >= from + n ? ops : undefined;
  });
}

/** From the daemons' log: old session closed to the next front end connected on another pid, per handover. */
function reconnectGaps(log: string): number[] {
  const gaps: number[] = [];
  let closed: { pid: number; time: number } | null = null;
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line) as { pid: number; time: number; msg: string };
    if (e.msg === 'vhost-user session closed') closed = { pid: e.pid, time: e.time };
    else if (e.msg === 'vhost-user front end connected' && closed && e.pid !== closed.pid) {
      gaps.push(e.time - closed.time);
      closed = null;
    }
  }
  return gaps;
}

/** The `n` largest values: one stall per kill or upgrade, the rest being TCG noise on a loaded host. */
function largest(xs: number[], n: number): number[] {
  return [...xs].sort((a, b) => b - a).slice(0, n);
}

function setFlag(file: string, text: string): void {
  const fd = openSync(file, 'r+');
  const b = Buffer.alloc(4096);
  b.write(`${text}\n`);
  writeSync(fd, b, 0, b.length, FLAG_OFFSET);
  fsyncSync(fd);
  closeSync(fd);
}

function stats(xs: number[]): string {
  if (xs.length === 0) return 'none';
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return `n=${s.length} min=${s[0]} median=${q(0.5)} p90=${q(0.9)} max=${s[s.length - 1]} ms`;
}

function gapsOf(out: string, phase: string): number[] {
  const gaps: number[] = [];
  for (const m of out.matchAll(new RegExp(`^gaps ${phase} \\d+: (.*)$`, 'gm'))) for (const g of m[1].trim().split(/\s+/)) if (g) gaps.push(Number(g));
  return gaps;
}

// Typically 4–10 minutes on a loaded 2-core host (one boot, 40 daemon restarts); the file gets its
// own timeout, well under CI's total.
t.setTimeout(30 * 60_000);

t.test(`guest I/O survives ${CYCLES} SIGKILL+restarts and ${CYCLES} upgrades with no error`, { timeout: 30 * 60_000 }, async (t) => {
  if (!requireGuestTools(t)) return;
  await ensureGuestImage();
  const dir = mkdtempSync(join(tmpdir(), 'bw-'));
  const sock = join(dir, 'rpc.sock');
  const state = join(dir, 'state.json');
  const disk = join(dir, 'disk.img');
  const logFile = join(dir, 'daemon.log');
  writeFileSync(disk, Buffer.alloc(DISK_BYTES));
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({
    plugins: ['@blockwork/bdev-aio', '@blockwork/vhost-blk'],
    subsystems: [
      { subsystem: 'bdev', config: [{ method: 'bdev_aio_create', params: { name: 'aio0', filename: disk } }] },
      { subsystem: 'vhost_blk', config: [{ method: 'vhost_create_blk_controller', params: { ctrlr: 'vhost.0', dev_name: 'aio0' } }] },
    ],
  }));
  let child: ChildProcess | null = null;
  let upgradedPid = -1;
  const start = async (): Promise<ChildProcess> => {
    const out = openSync(logFile, 'a');
    const c = spawn(process.execPath, [BIN, 'start', '--config', config, '--state-file', state, '--rpc-socket', sock, '--socket-dir', dir, '--run-dir', dir, '--log-level', 'info'], { stdio: ['ignore', out, out] });
    closeSync(out);
    await waitFor('the daemon to listen', 60_000, async () => (c.exitCode === null ? rpc(sock, 'spdk_get_version') : Promise.reject(new Error('exited'))));
    return c;
  };
  t.teardown(() => {
    child?.kill('SIGKILL');
    if (upgradedPid > 0) {
      try {
        process.kill(upgradedPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
  child = await start();
  const guest = startGuest({ script: SCRIPT, vhostUserBlk: [{ socket: join(dir, 'vhost.0'), numQueues: 2, reconnect: true }], timeoutMs: 28 * 60_000 });
  t.teardown(() => guest.kill());

  await guest.waitFor('phase-kill-start');
  const killPause: number[] = [];
  for (let i = 0; i < CYCLES; i++) {
    await waitFor('the guest session', 60_000, () => sessionBack(sock));
    await sleep(200 + Math.random() * 1300);
    const c = child!;
    const exited = new Promise((r) => c.once('exit', r));
    const t0 = Date.now();
    c.kill('SIGKILL');
    await exited;
    child = await start();
    await waitFor('the guest session after restart', 60_000, () => sessionBack(sock));
    killPause.push(Date.now() - t0);
    await guestIo(sock);
  }
  setFlag(disk, 'stop-kill');

  await guest.waitFor('phase-upgrade-start', 'output', 10 * 60_000);
  const upgradePause: number[] = [];
  const reports: Array<Record<string, unknown>> = [];
  for (let i = 0; i < CYCLES; i++) {
    await waitFor('the guest session', 60_000, () => sessionBack(sock));
    await sleep(200 + Math.random() * 1300);
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [BIN, 'upgrade', '--rpc-socket', sock, '--log-file', logFile, '--json'], (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out)));
    });
    const r = JSON.parse(stdout) as { new_pid: number; pause_ms: number | null; drain_ms: number; start_ms: number };
    reports.push(r);
    if (child) {
      child = null; // the first upgrade replaced our own child; later ones are the upgrader's
    }
    upgradedPid = r.new_pid;
    upgradePause.push(r.pause_ms ?? -1);
    await guestIo(sock);
  }
  setFlag(disk, 'stop-upgrade');

  const res = await guest.result;
  const out = res.output;
  t.equal(res.exitCode, 0, 'guest script ran to the end');
  t.match(out, /^all-done$/m, 'both phases finished');
  t.match(out, /^phase-kill-done runs=\d+ fails=0$/m, 'fio: no failed run while the daemon was killed');
  t.match(out, /^phase-upgrade-done runs=\d+ fails=0$/m, 'fio: no failed run during upgrades');
  t.notMatch(out, /^fio-(fail|err) /m, 'fio: zero errors, zero verify failures');
  t.match(out, /^ioerr 0$/m, 'guest kernel logged no I/O error');
  const log = readFileSync(logFile, 'utf8');
  const recovered = (log.match(/recovered in-flight requests/g) ?? []).length;
  t.equal((log.match(/crash recovery is not available/g) ?? []).length, 0, 'QEMU negotiated INFLIGHT_SHMFD on every connection');
  t.ok(upgradePause.every((p) => p >= 0), 'every upgrade saw the session come back');
  t.comment(`kill+restart, host view (SIGKILL to session started again): ${stats(killPause)}`);
  const killGaps = gapsOf(out, 'kill');
  const upGaps = gapsOf(out, 'upgrade');
  t.comment(`kill+restart, guest fio: ${killGaps.length} gaps > ${STALL_MS} ms; the ${CYCLES} largest: ${stats(largest(killGaps, CYCLES))} [${largest(killGaps, CYCLES).join(' ')}]`);
  t.comment(`upgrade, host view (SIGTERM to session started again): ${stats(upgradePause)}`);
  t.comment(`upgrade, old daemon drain+exit: ${stats(reports.map((r) => r.drain_ms as number))}; new daemon ready: ${stats(reports.map((r) => r.start_ms as number))}`);
  t.comment(`upgrade, guest fio: ${upGaps.length} gaps > ${STALL_MS} ms; the ${CYCLES} largest: ${stats(largest(upGaps, CYCLES))} [${largest(upGaps, CYCLES).join(' ')}]`);
  t.comment(`upgrade, old session closed to QEMU connected to the new daemon (daemon logs): ${stats(reconnectGaps(log).slice(-CYCLES))}`);
  t.comment(`sessions that resubmitted in-flight requests after a restart: ${recovered}`);
  if (res.exitCode !== 0 || /fio-fail|ioerr [1-9]/.test(out)) t.comment(out.slice(-6000) + '\n' + res.console.slice(-4000));
});
