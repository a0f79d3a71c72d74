import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { access, open, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ensureGuestImage, requireGuestTools, runGuest, startGuest } from '../src/index';

// Three TCG boots take ~1.5 min alone and twice that when tap's other job boots guests too:
// more than the project's 300 s per file. (t.setTimeout on the root tells the runner.)
t.setTimeout(600_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

t.test('a script\'s stdout (binary, 64 KiB, no final newline) and exit code come back exactly', async (t) => {
  if (!requireGuestTools(t, { storageDaemon: false })) return;
  await ensureGuestImage();
  const r = await runGuest({
    script: [
      'echo hello',
      // One printf of all 256 byte values as octal escapes (a loop would fork 256 times).
      `printf '${Array.from({ length: 256 }, (_, i) => '\\' + i.toString(8).padStart(3, '0')).join('')}'`,
      "head -c 65536 /dev/zero | tr '\\000' z",
      'echo to-stderr >&2',
      "printf 'tail without newline'",
      'exit 3',
    ].join('\n'),
    timeoutMs: 120_000,
  });
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const expected = Buffer.concat([Buffer.from('hello\n'), bytes, Buffer.alloc(65536, 'z'), Buffer.from('tail without newline')]);
  t.equal(r.timedOut, false);
  t.equal(r.exitCode, 3, 'exit code', { console: r.console, stderr: r.stderr });
  t.equal(r.outputBytes.length, expected.length, 'output length');
  t.ok(r.outputBytes.equals(expected), 'output bytes identical');
  t.match(r.console, /to-stderr/, 'stderr goes to the console');
  t.match(r.console, /blockwork-guest: running the script/, 'console has init\'s messages');
  t.match(r.console, /reboot: Power down/, 'console has the kernel log');
  t.comment(`boot + run + power-off: ${r.durationMs} ms`);
});

async function waitForPath(path: string, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    try {
      return await access(path);
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`${what} did not create ${path}`);
}

const MiB = 1 << 20;
const PATTERN_OFFSET = 32 * MiB;

t.test('qemu-storage-daemon vhost-user-blk disk: size, queues, fio verify, data on the host', async (t) => {
  if (!requireGuestTools(t)) return;
  await ensureGuestImage();
  const dir = mkdtempSync(join(tmpdir(), 'bw-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const img = join(dir, 'disk.img');
  const sock = join(dir, 'vhost.sock');
  await writeFile(img, '');
  await truncate(img, 64 * MiB);
  const qsd = spawn('qemu-storage-daemon', [
    '--blockdev', `driver=file,node-name=f,filename=${img},cache.direct=on,aio=io_uring`,
    '--export', `type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path=${sock},writable=on,num-queues=2`,
  ], { stdio: ['ignore', 'inherit', 'inherit'] });
  const qsdExit = new Promise((r) => qsd.once('exit', r));
  t.teardown(() => void qsd.kill('SIGKILL'));
  await waitForPath(sock, qsd, 'qemu-storage-daemon');

  const r = await runGuest({
    vhostUserBlk: [{ socket: sock, numQueues: 2 }],
    timeoutMs: 240_000,
    script: `
echo "size $(blockdev --getsize64 /dev/vda)"
echo "queues $(ls /sys/block/vda/mq | wc -l)"
fio --name=v --filename=/dev/vda --rw=randwrite --bs=4k --size=16M --iodepth=16 --ioengine=libaio \\
  --direct=1 --verify=crc32c >/tmp/fio.out 2>&1
rc=$?
cat /tmp/fio.out >&2
echo "fio $rc"
yes BLOCKWORK-PATTERN | head -c ${MiB} >/tmp/p
dd if=/tmp/p of=/dev/vda bs=65536 seek=${PATTERN_OFFSET / 65536} conv=fsync 2>/dev/null
echo "wrote $(sha256sum </tmp/p | cut -d' ' -f1)"
echo 3 >/proc/sys/vm/drop_caches
echo "read $(dd if=/dev/vda bs=65536 skip=${PATTERN_OFFSET / 65536} count=16 2>/dev/null | sha256sum | cut -d' ' -f1)"
`,
  });
  t.equal(r.exitCode, 0, 'guest script finished', { console: r.console, stderr: r.stderr });
  const lines = Object.fromEntries(r.output.trim().split('\n').map((l) => l.split(' ') as [string, string]));
  t.equal(lines.size, String(64 * MiB), '/dev/vda has the image size');
  t.equal(lines.queues, '2', 'two blk-mq hardware queues');
  t.equal(lines.fio, '0', 'fio randwrite with crc32c verify passed');
  t.match(r.console, /v: \(groupid=0/, 'fio ran');

  qsd.kill('SIGTERM');
  await qsdExit;
  const expected = Buffer.alloc(MiB, 'BLOCKWORK-PATTERN\n');
  const sha = createHash('sha256').update(expected).digest('hex');
  t.equal(lines.wrote, sha, 'guest wrote the expected pattern');
  t.equal(lines.read, sha, 'guest read it back from the disk');
  const fh = await open(img, 'r');
  try {
    const onHost = Buffer.alloc(MiB);
    await fh.read(onHost, 0, MiB, PATTERN_OFFSET);
    t.equal(createHash('sha256').update(onHost).digest('hex'), sha, 'the pattern is in the image on the host');
    const fioArea = Buffer.alloc(MiB);
    await fh.read(fioArea, 0, MiB, 0);
    t.notOk(fioArea.equals(Buffer.alloc(MiB)), 'fio\'s writes reached the image');
  } finally {
    await fh.close();
  }
});

t.test('a socket path too long for sun_path is refused before QEMU starts', async (t) => {
  if (!requireGuestTools(t, { storageDaemon: false })) return;
  const image = await ensureGuestImage();
  t.throws(() => startGuest({ image, script: 'true', vhostUserBlk: [{ socket: '/tmp/' + 'x'.repeat(103) }] }), /longer than 107 bytes/);
});

t.test('a timeout kills QEMU and is reported', async (t) => {
  if (!requireGuestTools(t, { storageDaemon: false })) return;
  const image = await ensureGuestImage();
  const g = startGuest({ image, script: 'sleep 600', timeoutMs: 5000 });
  const r = await g.result;
  t.equal(r.timedOut, true);
  t.equal(r.exitCode, null);
  t.ok(r.durationMs >= 5000 && r.durationMs < 15000, `killed after ${r.durationMs} ms`);
  t.equal(isAlive(g.pid), false, 'QEMU is gone');
});

t.test('waitFor sees output while the guest runs; kill() stops it', async (t) => {
  if (!requireGuestTools(t, { storageDaemon: false })) return;
  const image = await ensureGuestImage();
  const g = startGuest({ image, script: 'echo ready; sleep 600', timeoutMs: 120_000 });
  t.teardown(() => g.kill());
  await g.waitFor('ready\n');
  await g.waitFor('blockwork-guest: running the script', 'console', 1000);
  t.equal(isAlive(g.pid), true, 'guest still running');
  g.kill();
  const r = await g.result;
  t.equal(r.timedOut, false);
  t.equal(r.exitCode, null);
  t.equal(r.output, 'ready\n', 'partial output without end marker');
  await t.rejects(g.waitFor('never'), /exited before/);
});
