import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, createWriteStream, existsSync, fdatasyncSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RpcClient } from '@blockwork/core';
import { ensureGuestImage, requireGuestTools, startGuest, type GuestHandle } from '@blockwork/guest-vm';
import type { MigrationStatus } from '../src/mirror-job';
import { rpcWhenListening, sleep, tempDir, until } from './fixtures/env';
import { Qmp } from './fixtures/qmp';

const BIN = resolve(__dirname, '../../cli/bin/blockwork.js');
const MiB = 2 ** 20;
const SIZE = 64 * MiB;
/** The guest polls this 4 KiB block (outside fio's 32 MiB) between fio rounds; the test writes STOP there on B. */
const STOP_BLOCK = (SIZE - MiB) / 4096;

/**
 * The guest writes continuously: rounds of fio randwrite with crc32c verify (verify_backlog reads
 * back what it wrote while it writes, then a final verify of the round), so a round that spans the
 * switchover writes on A and verifies on B. It stops when the STOP block appears.
 */
const SCRIPT = `
echo GUEST-UP >&2
round=0; failed=0
while :; do
  round=$((round+1))
  fio --name=r$round --filename=/dev/vda --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=4 \\
      --size=32M --io_size=4M --randseed=$round --verify=crc32c --verify_backlog=64 --verify_fatal=1 \\
      --verify_state_save=0 --output=/tmp/fio.out >/dev/null 2>&1
  rc=$?
  echo "ROUND $round rc=$rc" >&2
  if [ $rc -ne 0 ]; then failed=$((failed+1)); cat /tmp/fio.out >&2; fi
  echo 3 > /proc/sys/vm/drop_caches
  if dd if=/dev/vda bs=4096 skip=${STOP_BLOCK} count=1 2>/dev/null | grep -q BWSTOP; then break; fi
done
echo "FIO-DONE rounds=$round failed=$failed" >&2
`;

interface Daemon { child: ChildProcess; rpc: RpcClient; vhostSocket: string }

/**
 * A daemon serving `img` as aio bdev 'disk' to its VM through vhost-user-blk controller `v<name>`
 * (socket in `dir`) and over NBD (B's export is A's mirror target). The controller opens the bdev
 * without a claim, so B serves the incoming VM and A's mirror from the same bdev.
 */
async function startDaemon(dir: string, name: string, img: string): Promise<Daemon> {
  const cfg = join(dir, `${name}.json`);
  writeFileSync(cfg, JSON.stringify({
    plugins: ['@blockwork/bdev-aio', '@blockwork/nbd', '@blockwork/migration', '@blockwork/vhost-blk'],
    subsystems: [{ subsystem: 'bdev', config: [{ method: 'bdev_aio_create', params: { name: 'disk', filename: img, block_size: 512 } }] }],
  }));
  const sock = join(dir, `${name}.rpc`);
  // BW_MIGRATION_LOG_DIR keeps each daemon's log there (BW_MIGRATION_LOG_LEVEL=debug adds per-message vhost-user timings).
  const logDir = process.env.BW_MIGRATION_LOG_DIR;
  const logLevel = process.env.BW_MIGRATION_LOG_LEVEL ?? (logDir ? 'info' : 'error');
  const child = spawn(process.execPath, [BIN, 'start', '--config', cfg, '--rpc-socket', sock, '--socket-dir', dir, '--run-dir', join(dir, `${name}-run`), '--log-level', logLevel],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const logFile = logDir ? createWriteStream(join(logDir, `${name}.log`)) : null;
  let err = '';
  child.stderr!.on('data', (c) => {
    if (logFile) logFile.write(c);
    else err += c;
  });
  let rpc: RpcClient;
  try {
    rpc = await rpcWhenListening(sock, child, 30000, `daemon ${name}`, () => (logDir ? `see ${join(logDir, `${name}.log`)}` : err));
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  // Each daemon serves its disk over NBD on a Unix socket: A's to the source QEMU, B's to A's mirror and the destination QEMU.
  await rpc.call('nbd_server_start', { socket: join(dir, `${name}.nbd`) });
  await rpc.call('nbd_server_add_export', { bdev: 'disk' });
  await rpc.call('vhost_create_blk_controller', { ctrlr: `v${name}`, dev_name: 'disk' });
  return { child, rpc, vhostSocket: join(dir, `v${name}`) };
}

/** A destination guest kernel that died after RESUME (oops, panic, RCU stall, or silence). */
const KERNEL_CRASH = /Oops|BUG:|general protection|Kernel panic|rcu.{0,40}stall|NX-protected|unable to handle/i;
/**
 * Attempts before the test fails on destination-guest crashes alone. QEMU 7.2 under TCG on a loaded
 * host intermittently delivers stale guest RAM to the destination, whatever the disk: the same crash
 * hit qemu-storage-daemon (10 of 17) and QEMU's own virtio-blk (7 of 12) as often as Blockwork (11 of
 * 17), and never a VM stopped during the transfer (docs/migration.md, "Intermittent destination
 * crash"). Such an attempt is retried, with its evidence in the output; at the e2e's rate (about 1 in
 * 5, up to 1 in 2 under load) five attempts make a spurious failure unlikely. Any disk finding (files
 * differing at switchover, a fio verify error reported by a live guest) fails at once.
 */
const ATTEMPTS = 5;

// Up to five migrations (two guest boots each, 30–80 s under TCG on a loaded machine).
t.setTimeout(3_600_000);

t.test('VM live migration over vhost-user-blk: a guest writing with fio verify moves from daemon A to daemon B; the disk follows through an NBD mirror', { timeout: 3_600_000 }, async (t) => {
  if (!requireGuestTools(t)) return;
  await ensureGuestImage();
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const crash = await migrateOnce(t);
    if (crash === null) return;
    t.comment(`attempt ${attempt}: the destination guest kernel died after RESUME (QEMU TCG RAM transfer, see docs/migration.md); console:\n${crash}`);
  }
  t.fail(`the destination guest kernel died after RESUME in all ${ATTEMPTS} attempts`);
});

/** One migration; null when it completed, or the destination console's tail when its kernel died after RESUME. */
async function migrateOnce(t: Test): Promise<string | null> {
  const logDir = process.env.BW_MIGRATION_LOG_DIR;
  const dir = tempDir(t);
  const imgA = join(dir, 'a.img');
  const imgB = join(dir, 'b.img');
  writeFileSync(imgA, Buffer.alloc(SIZE));
  writeFileSync(imgB, Buffer.alloc(SIZE, 0xee)); // different from A everywhere: the mirror must copy it all
  const a = await startDaemon(dir, 'a', imgA);
  const b = await startDaemon(dir, 'b', imgB);
  const guests: GuestHandle[] = [];
  const cleanup = () => {
    for (const g of guests) g.kill();
    for (const d of [a, b]) { d.rpc.close(); d.child.kill('SIGKILL'); }
  };
  t.teardown(cleanup);

  // Source VM on A: its disk is A's vhost-user-blk controller (guest RAM in a shared memfd, which
  // startGuest sets up for vhost-user disks); A marks in QEMU's dirty log what it writes into guest RAM.
  const src = startGuest({ script: SCRIPT, memMiB: 512, qmpSocket: join(dir, 'qa'), vhostUserBlk: [{ socket: a.vhostSocket }], timeoutMs: 840000 });
  guests.push(src);
  await src.waitFor('ROUND 1 rc=0', 'console', 400000);
  t.pass('fio runs on the source VM');

  // Mirror A → B over NBD, while the guest writes.
  await a.rpc.call('bdev_nbd_attach', { name: 'remote', socket: join(dir, 'b.nbd'), export_name: 'disk' });
  await a.rpc.call('migration_start', { name: 'live', source_bdev: 'disk', target_bdev: 'remote', bitmap_path: join(dir, 'live.bitmap') });
  const status = async () => ((await a.rpc.call('migration_get_status', { name: 'live' })) as MigrationStatus[])[0];
  await until(async () => (await status()).phase === 'converged', 300000, 'mirror converged');
  t.pass(`mirror converged (${(await status()).bytes_copied} bytes copied)`);

  // Destination VM on B: the same devices, its disk on B's controller, plus -incoming. QEMU
  // connects to B's controller at once and starts the device when the VM resumes.
  const migSock = join(dir, 'mig');
  const dst = startGuest({ script: SCRIPT, memMiB: 512, qmpSocket: join(dir, 'qb'), vhostUserBlk: [{ socket: b.vhostSocket }], extraArgs: ['-incoming', `unix:${migSock}`], timeoutMs: 840000 });
  guests.push(dst);
  const qa = await Qmp.connect(join(dir, 'qa'));
  const qb = await Qmp.connect(join(dir, 'qb'));
  t.teardown(() => { qa.close(); qb.close(); });
  await until(() => existsSync(migSock), 120000, 'destination listening');

  await qa.call('migrate-set-capabilities', { capabilities: [{ capability: 'pause-before-switchover', state: true }, { capability: 'events', state: true }] });
  // QEMU stops the VM once the RAM still dirty would go in bandwidth × downtime-limit, and sends
  // that remainder after migrate-continue, inside the pause: with 300 ms that was 120–230 ms of it.
  await qa.call('migrate-set-parameters', { 'max-bandwidth': 1024 * MiB, 'downtime-limit': 50 });
  await qa.call('migrate', { uri: `unix:${migSock}` });
  type MigInfo = { status: string; downtime?: number; 'total-time'?: number; 'error-desc'?: string };
  const info = () => qa.call<MigInfo>('query-migrate');
  await until(async () => {
    const s = await info();
    if (s.status === 'failed' || s.status === 'cancelled') throw new Error(`QEMU migration ${s.status}: ${s['error-desc'] ?? ''}`);
    return s.status === 'pre-switchover';
  }, 300000, 'pre-switchover');

  // The VM is paused and QEMU has drained and flushed its disk: the final pass runs with no writer.
  const t0 = Date.now();
  t.equal(await a.rpc.call('migration_complete', { name: 'live' }), true, 'migration_complete');
  const finalPassMs = Date.now() - t0;
  t.equal((await status()).phase, 'completed');
  t.ok(finalPassMs < 300, `the final pass (Blockwork's share of the pause) took ${finalPassMs} ms`);
  // Compared here, while nothing writes either file (A's VM is stopped, B's not started), and
  // subtracted from the pause below. After migrate-continue the destination resumes on its own
  // and writes B's file, so a later comparison would race the guest; a destination started with
  // -S would be quiet until `cont`, but that comparison would sit inside the pause just the same.
  const c0 = Date.now();
  t.ok(readFileSync(imgB).equals(readFileSync(imgA)), 'at switchover B\'s file equals A\'s');
  const checkMs = Date.now() - c0;
  const t1 = Date.now();
  // QEMU emits RESUME before it starts the devices (vm_prepare_start), and the vCPUs run after
  // them: B's vhost-user-blk start (features, memory table, rings) is still part of the pause.
  const bRunning = (async () => {
    while (Date.now() - t1 < 120000) {
      const [c] = (await b.rpc.call('vhost_get_controllers', { name: 'vb' })) as Array<{ sessions: Array<{ started: boolean }> }>;
      if (c.sessions.some((x) => x.started)) return Date.now();
      await sleep(5);
    }
    return NaN;
  })();
  await qa.call('migrate-continue', { state: 'pre-switchover' });
  await until(async () => (await info()).status === 'completed', 120000, 'QEMU migration completed');
  const done = await info();
  const when = (q: Qmp, event: string, status?: string) => {
    const e = q.events.find((x) => x.event === event && (status === undefined || (x.data as { status?: string }).status === status)) as { timestamp?: { seconds: number; microseconds: number } } | undefined;
    return e?.timestamp ? e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000 : NaN;
  };
  await until(() => !Number.isNaN(when(qb, 'RESUME')), 60000, 'RESUME on the destination');
  // Event timestamps are the host's wall clock in both QEMUs, so they compare with each other and with Date.now().
  const stopAt = when(qa, 'STOP');
  const pause = when(qb, 'RESUME') - stopAt;
  const queueAt = await bRunning;
  const held = t1 - when(qa, 'MIGRATION', 'pre-switchover');
  t.comment(`guest-visible pause (STOP on A → RESUME on B): ${Math.round(pause)} ms; QMP downtime ${done.downtime} ms; total migration ${done['total-time']} ms`);
  t.comment(`  STOP → pre-switchover ${Math.round(when(qa, 'MIGRATION', 'pre-switchover') - stopAt)} ms; held at pre-switchover ${Math.round(held)} ms (migration_complete ${finalPassMs} ms, the test's own file comparison ${checkMs} ms); migrate-continue → completed ${Math.round(when(qa, 'MIGRATION', 'completed') - t1)} ms; completed → RESUME on B ${Math.round(when(qb, 'RESUME') - when(qa, 'MIGRATION', 'completed'))} ms`);
  t.comment(`  pause without the test's comparison: about ${Math.round(pause - checkMs)} ms; RESUME on B → B's queue running ${Math.round(queueAt - when(qb, 'RESUME'))} ms (polled every 5 ms), so STOP → disk running on B about ${Math.round(queueAt - stopAt - checkMs)} ms`);
  t.ok(pause - checkMs < 300, `switchover pause STOP → RESUME without the test's comparison: ${Math.round(pause - checkMs)} ms (target < 300)`);
  t.ok(typeof done.downtime === 'number', 'QMP reports the downtime');
  await qb.call('query-status').then((s) => t.equal((s as { status: string }).status, 'running', 'the destination VM runs'));
  await qa.call('quit').catch(() => {});

  // fio goes on on B: wait for a round that ran there, then ask the guest to stop. A kernel that
  // dies or goes silent on the way is the QEMU problem above (retried); any other exit is ours.
  const crashOf = async (text: string, timeoutMs: number): Promise<string | null> =>
    dst.waitFor(text, 'console', timeoutMs).then(() => null, async (e: Error) => {
      dst.kill();
      const r = await dst.result;
      if (logDir) writeFileSync(join(logDir, 'destination-console.txt'), r.console);
      const bad = r.console.match(/ROUND \d+ rc=[1-9]\d*/);
      if (bad) t.fail(`a fio round on B failed before the guest stopped: ${bad[0]}`);
      if (KERNEL_CRASH.test(r.console) || /did not appear on console within/.test(e.message)) return `${e.message}\n${r.console.slice(-3000)}`;
      t.comment(`destination console (tail):\n${r.console.slice(-4000)}\ndestination QEMU stderr:\n${r.stderr.slice(-2000)}`);
      throw e;
    });
  let dead = await crashOf('ROUND', 180000);
  if (dead === null) {
    const fd = openSync(imgB, 'r+');
    writeSync(fd, Buffer.from('BWSTOP'), 0, 6, STOP_BLOCK * 4096);
    fdatasyncSync(fd);
    closeSync(fd);
    dead = await crashOf('FIO-DONE', 240000);
  }
  if (dead !== null) {
    qa.close();
    qb.close();
    cleanup();
    return dead;
  }
  const r = await dst.result;
  const consoleAll = (await src.result).console + r.console;
  const rounds = [...consoleAll.matchAll(/ROUND (\d+) rc=(\d+)/g)];
  t.ok(rounds.length >= 2, `${rounds.length} fio rounds ran`);
  t.same(rounds.filter((m) => m[2] !== '0').map((m) => m[0]), [], 'every fio round verified with zero errors');
  t.match(r.console, /FIO-DONE rounds=\d+ failed=0/, 'fio finished on the destination with zero errors');
  t.ok([...r.console.matchAll(/ROUND (\d+) rc=0/g)].length >= 1, 'at least one round ran wholly or partly on B');
  await a.rpc.call('migration_cancel', { name: 'live' });
  rmSync(join(dir, 'live.bitmap'), { force: true });
  return null;
}
