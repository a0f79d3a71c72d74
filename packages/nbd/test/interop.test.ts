import t, { type Test } from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { allocAligned, type Daemon, io, IoType } from '@blockwork/core';
import { exportingDaemon, exportingDaemonTcp, needs, requireTools, run, startDaemon, tempDir } from './fixtures/helpers';

const QEMU = needs(['qemu-io', 'qemu-img', 'qemu-nbd'], 'qemu-utils');
const NBDKIT = needs(['nbdkit'], 'nbdkit');

/** Reads `len` bytes at byte `off` of a bdev through Blockwork. */
async function readBdev(d: Daemon, bdev: string, off: number, len: number): Promise<Buffer> {
  const desc = d.layer.open(bdev, false);
  try {
    const bs = desc.bdev.blockSize;
    const first = Math.floor(off / bs);
    const n = Math.ceil((off + len) / bs) - first;
    const buf = allocAligned(n * bs, 4096);
    await io.read(desc.getIoChannel(), buf, first, n);
    return Buffer.from(buf.subarray(off - first * bs, off - first * bs + len));
  } finally {
    desc.close();
  }
}

async function qemuIo(t: Test, url: string, cmds: string[]): Promise<string> {
  const r = await run('qemu-io', ['-f', 'raw', url, ...cmds.flatMap((c) => ['-c', c])]);
  t.equal(r.code, 0, `qemu-io ${cmds.join('; ')} exits 0 (${r.stderr.trim()})`);
  t.notMatch(r.stdout, /Pattern verification failed|error|failed/i, 'no verification failure');
  return r.stdout;
}

t.test('qemu-io writes and verifies patterns through the export (Unix socket), data lands on the malloc bdev', QEMU, async (t) => {
  requireTools(['qemu-io'], 'qemu-utils');
  const { d, socket } = await exportingDaemon(tempDir(t));
  t.teardown(() => d.stop());
  const url = `nbd+unix:///disk?socket=${socket}`;
  await qemuIo(t, url, ['write -P 0xab 4096 8192', 'read -P 0xab 4096 8192', 'flush']);
  t.same(await readBdev(d, 'Malloc0', 4096, 8192), Buffer.alloc(8192, 0xab), 'aligned pattern on the bdev');
  // 512-byte blocks: these are served by read-modify-write of the partial blocks.
  await qemuIo(t, url, ['write -P 0xcd 100 1000', 'read -P 0xcd 100 1000', 'read -P 0 0 100', 'read -P 0 1100 2996']);
  const got = await readBdev(d, 'Malloc0', 0, 4096);
  t.same(got, Buffer.concat([Buffer.alloc(100), Buffer.alloc(1000, 0xcd), Buffer.alloc(2996)]), 'unaligned pattern, neighbours intact');
  await qemuIo(t, url, ['write -z 4100 100', 'read -P 0 4100 100', 'read -P 0xab 4096 4', 'read -P 0xab 4200 100']);
  await qemuIo(t, url, ['discard 8192 4096', 'read -P 0 8192 4096']);
});

t.test('qemu-io over TCP with an export name, 4 KiB blocks, unaligned FUA write', QEMU, async (t) => {
  requireTools(['qemu-io'], 'qemu-utils');
  const { d, port } = await exportingDaemonTcp(tempDir(t), { blocks: 256, blockSize: 4096, name: 'vol1' });
  t.teardown(() => d.stop());
  const url = `nbd://127.0.0.1:${port}/vol1`;
  await qemuIo(t, url, ['write -P 0x5a 4096 8192', 'write -f -P 0x77 5000 777', 'read -P 0x77 5000 777', 'read -P 0x5a 4096 904', 'read -P 0x5a 5777 6511']);
  t.same(await readBdev(d, 'Malloc0', 5000, 777), Buffer.alloc(777, 0x77));
});

t.test('qemu-img convert and compare: the export equals the bdev', QEMU, async (t) => {
  requireTools(['qemu-img'], 'qemu-utils');
  const dir = tempDir(t);
  const { d, socket } = await exportingDaemon(dir, { blocks: 4096 });
  t.teardown(() => d.stop());
  const url = `nbd+unix:///disk?socket=${socket}`;
  const src = join(dir, 'src.raw');
  const pattern = Buffer.alloc(2 << 20);
  for (let i = 0; i < pattern.length; i += 4) pattern.writeUInt32LE((i * 2654435761) >>> 0, i);
  writeFileSync(src, pattern);
  const w = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, url]);
  t.equal(w.code, 0, `qemu-img convert into the export (${w.stderr.trim()})`);
  t.same(await readBdev(d, 'Malloc0', 0, pattern.length), pattern, 'bdev holds the file');
  const out = join(dir, 'out.raw');
  const r = await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', url, out]);
  t.equal(r.code, 0, `qemu-img convert from the export (${r.stderr.trim()})`);
  t.same(readFileSync(out), pattern, 'file read back from the export equals the bdev');
  const c = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src, url]);
  t.equal(c.code, 0, `qemu-img compare: identical (${c.stdout.trim()})`);
});

t.test('qemu-img info sees size; a read-only export refuses writes', QEMU, async (t) => {
  requireTools(['qemu-img', 'qemu-io'], 'qemu-utils');
  const { d, socket } = await exportingDaemon(tempDir(t));
  t.teardown(() => d.stop());
  await d.call('nbd_server_add_export', { bdev: 'Malloc0', name: 'ro', readonly: true });
  const info = await run('qemu-img', ['info', '--output=json', `nbd+unix:///ro?socket=${socket}`]);
  t.equal(JSON.parse(info.stdout)['virtual-size'], 2048 * 512);
  const r = await run('qemu-io', ['-f', 'raw', `nbd+unix:///ro?socket=${socket}`, '-c', 'write -P 1 0 512']);
  t.match(r.stdout + r.stderr, /read-only|Operation not permitted|Permission denied/i, 'write refused');
  const missing = await run('qemu-io', ['-f', 'raw', `nbd+unix:///nope?socket=${socket}`, '-c', 'read 0 512']);
  t.not(missing.code, 0, 'an unknown export is refused');
});

/** Client bdev against a third-party server: write/read, flush, trim (unmap), write_zeroes. */
async function exerciseClient(t: Test, d: Daemon, bdev: string): Promise<void> {
  const desc = d.layer.open(bdev, true);
  t.teardown(() => desc.close());
  const ch = desc.getIoChannel();
  const bs = desc.bdev.blockSize;
  const data = allocAligned(64 * bs, 4096);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
  await io.write(ch, data, 8, 64);
  const back = allocAligned(64 * bs, 4096);
  await io.read(ch, back, 8, 64);
  t.same(Buffer.from(back), Buffer.from(data), 'read after write');
  const many = Array.from({ length: 32 }, (_, i) => io.write(ch, Buffer.alloc(bs, i + 1), 100 + i, 1));
  await Promise.all(many);
  const one = Buffer.alloc(bs);
  await io.read(ch, one, 117, 1);
  t.same(one, Buffer.alloc(bs, 18), '32 concurrent writes landed');
  if (ch.bdev.ioTypeSupported(IoType.FLUSH)) await t.resolves(io.flush(ch, 0, desc.bdev.numBlocks), 'flush');
  t.ok(ch.bdev.ioTypeSupported(IoType.UNMAP), 'server offers trim');
  await io.unmap(ch, 8, 8);
  await io.read(ch, back.subarray(0, 8 * bs), 8, 8);
  t.same(Buffer.from(back.subarray(0, 8 * bs)), Buffer.alloc(8 * bs), 'trimmed range reads back zeros');
  if (ch.bdev.ioTypeSupported(IoType.WRITE_ZEROES)) {
    await io.writeZeroes(ch, 16, 8);
    await io.read(ch, back.subarray(0, 8 * bs), 16, 8);
    t.same(Buffer.from(back.subarray(0, 8 * bs)), Buffer.alloc(8 * bs), 'write_zeroes reads back zeros');
  }
}

t.test('client bdev against qemu-nbd exporting a raw file', QEMU, async (t) => {
  requireTools(['qemu-nbd'], 'qemu-utils');
  const dir = tempDir(t);
  const img = join(dir, 'disk.raw');
  writeFileSync(img, Buffer.alloc(8 << 20));
  const sock = join(dir, 'qemu-nbd.sock');
  const q = spawn('qemu-nbd', ['-f', 'raw', '-t', '-x', 'qd', '--socket', sock, '--discard=unmap', img], { stdio: 'ignore' });
  t.teardown(() => q.kill());
  await waitFor(() => existsSync(sock));
  const d = await startDaemon();
  t.teardown(() => d.stop());
  t.equal(await d.call('bdev_nbd_attach', { name: 'qn0', socket: sock, export_name: 'qd' }), 'qn0');
  const [info] = (await d.call('bdev_get_bdevs', { name: 'qn0' })) as Array<Record<string, unknown>>;
  t.equal(info.num_blocks, (8 << 20) / 512);
  t.same(info.driver_specific, { nbd: { address: null, port: null, socket: sock, export_name: 'qd' } });
  await exerciseClient(t, d, 'qn0');
  await d.call('bdev_nbd_detach', { name: 'qn0' });
  const file = readFileSync(img);
  t.equal(file[24 * 512 + 5], ((16 * 512 + 5) * 7 + 3) & 0xff, 'data reached the file behind qemu-nbd');
});

t.test('client bdev against nbdkit memory', NBDKIT, async (t) => {
  requireTools(['nbdkit'], 'nbdkit');
  const dir = tempDir(t);
  const sock = join(dir, 'nbdkit.sock');
  const k = spawn('nbdkit', ['-f', '-U', sock, 'memory', '16M'], { stdio: 'ignore' });
  t.teardown(() => k.kill());
  await waitFor(() => existsSync(sock));
  const d = await startDaemon();
  t.teardown(() => d.stop());
  t.equal(await d.call('bdev_nbd_attach', { name: 'kit0', socket: sock }), 'kit0');
  await exerciseClient(t, d, 'kit0');
});

async function waitFor(cond: () => boolean, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for the server socket');
    await new Promise((r) => setTimeout(r, 20));
  }
}
