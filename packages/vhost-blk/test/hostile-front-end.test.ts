import t from 'tap';
import { ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { io } from '@blockwork/core';
import { VirtioBlkDriver } from '@blockwork/bdev-virtio';
import { startDaemon } from './fixtures/daemon';

/**
 * Hostile input from @blockwork/bdev-virtio's test driver (raw descriptors and ring indices,
 * broken control messages) against a controller that also serves a well-behaved front end: the
 * daemon stays up and the other connection keeps working.
 */
const NEXT = 1;
const WRITE = 2;
const INDIRECT = 4;
const malloc = { method: 'bdev_malloc_create', params: { name: 'Malloc0', num_blocks: 16384, block_size: 512 } };

async function setup(t: { teardown(fn: () => unknown): void }) {
  const { d, dir } = await startDaemon(t, { plugins: ['@blockwork/bdev-virtio', '@blockwork/vhost-blk'], subsystems: [{ subsystem: 'bdev', config: [malloc] }] });
  await d.call('vhost_create_blk_controller', { ctrlr: 'vhost.0', dev_name: 'Malloc0' });
  const path = join(dir, 'vhost.0');
  await d.call('bdev_virtio_attach_controller', { name: 'Good', trtype: 'user', traddr: path, dev_type: 'blk' });
  const desc = d.layer.open('Good', true);
  t.teardown(() => desc.close());
  const good = desc.getIoChannel();
  const check = async (fill: number) => {
    const buf = Buffer.alloc(8192, fill);
    await io.write(good, buf, 64, 16);
    const back = Buffer.alloc(8192);
    await io.read(good, back, 64, 16);
    return back.equals(buf);
  };
  return { d, path, check };
}

async function hostileDriver(t: { teardown(fn: () => unknown): void }, path: string): Promise<VirtioBlkDriver> {
  const drv = await VirtioBlkDriver.connect(path, { vqCount: 1, vqSize: 16 });
  t.teardown(() => drv.close());
  await drv.start();
  return drv;
}

t.test('hostile rings: bad chains get used len 0, a broken driver only stops its own queue', async (t) => {
  const { d, path, check } = await setup(t);
  const drv = await hostileDriver(t, path);
  const q = drv.rawQueue(0);
  const s = q.scratch.addr;
  const cases: Array<[string, () => void]> = [
    ['buffer outside memory', () => q.writeDesc(0, { addr: 1n << 40n, len: 4096, flags: 0, next: 0 })],
    ['loop', () => { q.writeDesc(0, { addr: s, len: 16, flags: NEXT, next: 1 }); q.writeDesc(1, { addr: s, len: 16, flags: NEXT, next: 0 }); }],
    ['indirect table misaligned', () => q.writeDesc(0, { addr: s, len: 20, flags: INDIRECT, next: 0 })],
    ['indirect table outside memory', () => q.writeDesc(0, { addr: 1n << 50n, len: 64, flags: INDIRECT, next: 0 })],
    ['no writable status byte', () => q.writeDesc(0, { addr: s, len: 16, flags: 0, next: 0 })],
  ];
  let used = 0;
  for (const [name, write] of cases) {
    write();
    q.pushAvail([0]);
    q.kick();
    t.ok(await q.waitUsed(++used), `${name}: completed`);
    t.same(q.usedElem(used - 1), { id: 0, len: 0 }, `${name}: used len 0`);
  }
  // Header too short (8 bytes) with a status byte: IOERR.
  q.writeHeader(s, 0, 0);
  q.writeDesc(0, { addr: s, len: 8, flags: NEXT, next: 1 });
  q.writeDesc(1, { addr: s + 32, len: 1, flags: WRITE, next: 0 });
  q.pushAvail([0]);
  q.kick();
  t.ok(await q.waitUsed(++used));
  t.equal(q.read(s + 32, 1)[0], 1, 'short header: IOERR');
  // Unknown type: UNSUPP.
  q.writeHeader(s, 99, 0);
  q.writeDesc(0, { addr: s, len: 16, flags: NEXT, next: 1 });
  q.pushAvail([0]);
  q.kick();
  t.ok(await q.waitUsed(++used));
  t.equal(q.read(s + 32, 1)[0], 2, 'unknown type: UNSUPP');
  // Write (OUT) whose data descriptor is device-writable: IOERR.
  q.writeHeader(s, 1, 0);
  q.writeDesc(0, { addr: s, len: 16, flags: NEXT, next: 2 });
  q.writeDesc(2, { addr: s + 512, len: 512, flags: WRITE | NEXT, next: 1 });
  q.pushAvail([0]);
  q.kick();
  t.ok(await q.waitUsed(++used));
  t.equal(q.read(s + 32, 1)[0], 1, 'wrong direction: IOERR');
  t.ok(await check(0x31), 'the good front end still works');
  // Head out of range: fatal for this queue only.
  q.pushAvail([200]);
  q.kick();
  await new Promise((r) => setTimeout(r, 100));
  t.equal(q.usedIdx(), used, 'nothing completed for a head out of range');
  t.ok(await check(0x32), 'the good front end still works after the hostile queue stopped');
  t.match(await d.call('vhost_get_controllers'), [{ sessions: [{}, {}] }], 'both sessions still there');
});

t.test('avail idx far ahead stops only that queue', async (t) => {
  const { path, check } = await setup(t);
  const drv = await hostileDriver(t, path);
  const q = drv.rawQueue(0);
  q.setAvailIdx(1000);
  q.kick();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(q.usedIdx(), 0);
  t.ok(await check(0x41));
});

t.test('hostile control messages close only their connection', async (t) => {
  const { d, path, check } = await setup(t);
  const drv = await VirtioBlkDriver.connect(path, { vqCount: 1, vqSize: 16 });
  t.teardown(() => drv.close());
  await drv.negotiate();
  drv.allocateMemory();
  await t.rejects(drv.setMemTable({ memorySize: 1n << 40n }), 'a region larger than its fd is refused');
  t.ok(await check(0x51), 'the good front end still works');
  t.equal((await d.call('vhost_get_controllers') as Array<{ sessions: unknown[] }>)[0].sessions.length, 1, 'the hostile session is gone');
});

t.test('a front end that shrinks its memfd after SET_MEM_TABLE: no SIGBUS death, only its connection closes', async (t) => {
  const { d, path, check } = await setup(t);
  const drv = await hostileDriver(t, path);
  const q = drv.rawQueue(0);
  const s = q.scratch.addr;
  q.writeHeader(s, 0, 0);
  q.writeDesc(0, { addr: s, len: 16, flags: NEXT, next: 1 });
  q.writeDesc(1, { addr: s + 512, len: 512, flags: WRITE, next: 0 });
  q.pushAvail([0]);
  // QEMU seals its memfd backend against this; a hostile or buggy front end need not.
  ftruncateSync(drv.memFd, 0);
  q.kick();
  const sessions = async () => ((await d.call('vhost_get_controllers')) as Array<{ sessions: unknown[] }>)[0].sessions.length;
  const deadline = Date.now() + 5000;
  while ((await sessions()) !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.equal(await sessions(), 1, 'the truncating session is closed');
  t.ok(await check(0x61), 'the good front end still works');
});
