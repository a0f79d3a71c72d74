import t from 'tap';
import { join } from 'node:path';
import {
  closeFd, decodeConfig, decodeInflight, decodeU64, encodeInflight, decodeVirtioBlkConfig, encodeConfig, encodeMemoryTable, encodeU64, encodeVringAddr, encodeVringFd,
  encodeVringState, EventFd, memfdCreate, mmapFd, VhostUserFlags, VhostUserRequest as R,
  VhostUserProtocolFeature, VirtioBlkFeature, VirtioFeature,
} from '@blockwork/vhost-user';
import { InflightQueue, inflightQueueBytes, inflightRegionBytes } from '../src/inflight-region';
import { BlkType } from '../src/blk-request';
import { startDaemon } from './fixtures/daemon';
import { Front } from './fixtures/raw-front';
import { FakeGuest, GPA, MEM_SIZE, UVA } from './fixtures/fake-guest';

const malloc = { method: 'bdev_malloc_create', params: { name: 'Malloc0', num_blocks: 2048, block_size: 512 } };
const V = VhostUserFlags.VERSION;

async function daemonWithController(t: { teardown(fn: () => unknown): void }) {
  const { d, dir } = await startDaemon(t, { subsystems: [{ subsystem: 'bdev', config: [malloc] }] });
  await d.call('vhost_create_blk_controller', { ctrlr: 'vhost.0', dev_name: 'Malloc0' });
  return { d, path: join(dir, 'vhost.0') };
}

t.test('features, protocol features, queue num and config', async (t) => {
  const { path } = await daemonWithController(t);
  const f = await Front.open(t, path);
  const feats = decodeU64(R.GET_FEATURES, (await f.ask(R.GET_FEATURES)).payload);
  for (const b of [VirtioFeature.VERSION_1, VirtioFeature.RING_INDIRECT_DESC, VirtioFeature.RING_EVENT_IDX, VirtioFeature.VHOST_USER_F_PROTOCOL_FEATURES,
    VirtioBlkFeature.BLK_SIZE, VirtioBlkFeature.SEG_MAX, VirtioBlkFeature.SIZE_MAX, VirtioBlkFeature.TOPOLOGY, VirtioBlkFeature.MQ,
    VirtioBlkFeature.FLUSH, VirtioBlkFeature.DISCARD, VirtioBlkFeature.WRITE_ZEROES]) t.ok(feats & (1n << BigInt(b)), `feature bit ${b}`);
  t.notOk(feats & (1n << BigInt(VirtioBlkFeature.RO)), 'not read-only');
  t.equal(decodeU64(R.GET_PROTOCOL_FEATURES, (await f.ask(R.GET_PROTOCOL_FEATURES)).payload), 0x1120bn, 'MQ LOG_SHMFD REPLY_ACK CONFIG INFLIGHT_SHMFD STATUS');
  t.equal(decodeU64(R.GET_QUEUE_NUM, (await f.ask(R.GET_QUEUE_NUM)).payload), 64n);
  for (const size of [60, 256, 8]) {
    const r = decodeConfig(R.GET_CONFIG, (await f.ask(R.GET_CONFIG, encodeConfig({ offset: 0, size }))).payload);
    t.equal(r.size, size, `GET_CONFIG answers ${size} bytes`);
    const c = decodeVirtioBlkConfig(r.payload);
    t.equal(c.capacity, 2048n);
    if (size >= 60) t.match(c, { blkSize: 512, sizeMax: 131072, segMax: 126, maxDiscardSeg: 1, maxWriteZeroesSeg: 1, maxDiscardSectors: 32768 });
  }
});

t.test('REPLY_ACK: success for handled requests, failure for SET_CONFIG and unknown requests', async (t) => {
  const { path } = await daemonWithController(t);
  const f = await Front.open(t, path);
  f.send(R.SET_PROTOCOL_FEATURES, encodeU64(0x10209n));
  const need = V | VhostUserFlags.NEED_REPLY;
  t.equal(decodeU64(0, (await f.ask(R.SET_OWNER, Buffer.alloc(0), [], need)).payload), 0n);
  t.not(decodeU64(0, (await f.ask(R.SET_CONFIG, encodeConfig({ offset: 0, size: 8 }), [], need)).payload), 0n);
  t.not(decodeU64(0, (await f.ask(99, Buffer.alloc(0), [], need)).payload), 0n);
  f.send(R.SET_STATUS, encodeU64(0xf));
  t.equal(decodeU64(0, (await f.ask(R.GET_STATUS)).payload), 0xfn);
});

/** Negotiates, maps a memfd as guest memory and starts queue 0; returns the fake guest over it. */
async function startQueue(
  t: { teardown(fn: () => unknown): void },
  f: Front,
  opts: { guest?: { fd: number; g: FakeGuest }; inflightFd?: number } = {},
): Promise<{ g: FakeGuest; call: EventFd; kick: EventFd }> {
  let fd: number;
  let g: FakeGuest;
  if (opts.guest) ({ fd, g } = opts.guest);
  else {
    fd = memfdCreate('guest', MEM_SIZE);
    const map = mmapFd(fd, MEM_SIZE, 0);
    t.teardown(() => map.unmap());
    g = new FakeGuest(16, new Uint8Array(map.buffer));
  }
  const feats = decodeU64(0, (await f.ask(R.GET_FEATURES)).payload);
  f.send(R.SET_FEATURES, encodeU64(feats & ~(1n << BigInt(VirtioFeature.RING_EVENT_IDX))));
  if (opts.inflightFd !== undefined) {
    f.send(R.SET_PROTOCOL_FEATURES, encodeU64(1n << BigInt(VhostUserProtocolFeature.INFLIGHT_SHMFD)));
    f.send(R.SET_INFLIGHT_FD, encodeInflight({ mmapSize: BigInt(inflightRegionBytes(1, 16)), mmapOffset: 0n, numQueues: 1, queueSize: 16 }), [opts.inflightFd]);
  }
  f.send(R.SET_MEM_TABLE, encodeMemoryTable({ regions: [{ guestPhysAddr: BigInt(GPA), memorySize: BigInt(MEM_SIZE), userspaceAddr: BigInt(UVA), mmapOffset: 0n }] }), [fd]);
  if (!opts.guest) closeFd(fd);
  f.send(R.SET_VRING_NUM, encodeVringState({ index: 0, num: 16 }));
  // After a lost back end QEMU restores last_avail_idx from used->idx.
  f.send(R.SET_VRING_BASE, encodeVringState({ index: 0, num: g.usedIdx() }));
  f.send(R.SET_VRING_ADDR, encodeVringAddr({ index: 0, flags: 0, desc: BigInt(UVA + g.descOff), avail: BigInt(UVA + g.availOff), used: BigInt(UVA + g.usedOff), log: 0n }));
  const call = new EventFd();
  const kick = new EventFd();
  t.teardown(() => { call.close(); kick.close(); });
  f.send(R.SET_VRING_CALL, encodeVringFd(0), [call.fd]);
  f.send(R.SET_VRING_KICK, encodeVringFd(0), [kick.fd]);
  f.send(R.SET_VRING_ENABLE, encodeVringState({ index: 0, num: 1 }));
  return { g, call, kick };
}

async function writeAndRead(g: FakeGuest, call: EventFd, kick: EventFd, sector: number, fill: number): Promise<number[]> {
  // A queue signals once at start (spurious at worst), so wait for the used index, signal by signal.
  const signalledOnce = () => new Promise<void>((r) => call.watch(() => { call.unwatch(); r(); }));
  const signalled = async () => {
    const want = g.usedIdx() + 1;
    while (g.usedIdx() < want) await signalledOnce();
  };
  const st = g.alloc(1, 0xee);
  const before = g.usedIdx();
  g.post([{ gpa: g.header(BlkType.OUT, sector), len: 16 }, { gpa: g.alloc(4096, fill), len: 4096 }, { gpa: st, len: 1, write: true }]);
  let s = signalled();
  kick.signal();
  await s;
  const data = g.alloc(4096, 0);
  const st2 = g.alloc(1, 0xee);
  g.post([{ gpa: g.header(BlkType.IN, sector), len: 16 }, { gpa: data, len: 4096, write: true }, { gpa: st2, len: 1, write: true }]);
  s = signalled();
  kick.signal();
  await s;
  return [g.usedIdx() - before, g.at(st, 1)[0], g.at(st2, 1)[0], g.at(data, 4096).every((b) => b === fill) ? 1 : 0];
}

t.test('data path over a real socket, memfd guest memory and eventfds', async (t) => {
  const { d, path } = await daemonWithController(t);
  const f = await Front.open(t, path);
  const { g, call, kick } = await startQueue(t, f);
  t.same(await writeAndRead(g, call, kick, 64, 0x3c), [2, 0, 0, 1], 'two used elements, OK statuses, data read back');
  t.match(await d.call('vhost_get_controllers'), [{ sessions: [{ started: true, max_queues: 1, inflight_task_cnt: 0 }] }]);
  const base = await f.ask(R.GET_VRING_BASE, encodeVringState({ index: 0, num: 0 }));
  t.same([base.payload.readUInt32LE(0), base.payload.readUInt32LE(4)], [0, 2], 'GET_VRING_BASE answers last_avail_idx');
  t.match(await d.call('vhost_get_controllers'), [{ sessions: [{ started: false }] }]);
});

t.test('malformed messages close only their connection; others keep working', async (t) => {
  const { d, path } = await daemonWithController(t);
  const good = await Front.open(t, path);
  const { g, call, kick } = await startQueue(t, good);
  const hostile: Array<[string, (f: Front) => void]> = [
    ['queue index 200', (f) => f.send(R.SET_VRING_NUM, encodeVringState({ index: 200, num: 16 }))],
    ['queue size 3', (f) => f.send(R.SET_VRING_NUM, encodeVringState({ index: 0, num: 3 }))],
    ['short payload', (f) => f.send(R.SET_FEATURES, Buffer.alloc(3))],
    ['features not offered', (f) => f.send(R.SET_FEATURES, encodeU64(1n << 63n))],
    ['region larger than its fd', (f) => {
      const fd = memfdCreate('small', 4096);
      f.send(R.SET_MEM_TABLE, encodeMemoryTable({ regions: [{ guestPhysAddr: 0n, memorySize: 1n << 20n, userspaceAddr: 0n, mmapOffset: 0n }] }), [fd]);
      closeFd(fd);
    }],
    ['regions without fds', (f) => f.send(R.SET_MEM_TABLE, encodeMemoryTable({ regions: [{ guestPhysAddr: 0n, memorySize: 4096n, userspaceAddr: 0n, mmapOffset: 0n }] }))],
    ['ring outside memory', (f) => {
      const fd = memfdCreate('m', 65536);
      f.send(R.SET_MEM_TABLE, encodeMemoryTable({ regions: [{ guestPhysAddr: 0n, memorySize: 65536n, userspaceAddr: 0x10000n, mmapOffset: 0n }] }), [fd]);
      closeFd(fd);
      f.send(R.SET_VRING_NUM, encodeVringState({ index: 0, num: 256 }));
      f.send(R.SET_VRING_ADDR, encodeVringAddr({ index: 0, flags: 0, desc: 0x10000n, avail: 0x20000n, used: 0x90000n, log: 0n }));
    }],
    ['config beyond 256 bytes', (f) => f.send(R.GET_CONFIG, encodeConfig({ offset: 200, size: 100 }))],
  ];
  for (const [name, act] of hostile) {
    const f = await Front.open(t, path);
    act(f);
    await f.closed;
    t.pass(`${name}: connection closed`);
  }
  t.same(await writeAndRead(g, call, kick, 8, 0x11), [2, 0, 0, 1], 'the first connection still works');
  t.equal((await d.call('vhost_get_controllers') as Array<{ sessions: unknown[] }>)[0].sessions.length, 1, 'only the good session is left');
});

t.test('hostile ring contents: a bad chain gets used len 0, the queue keeps working', async (t) => {
  const { path } = await daemonWithController(t);
  const f = await Front.open(t, path);
  const { g, call, kick } = await startQueue(t, f);
  g.post([{ gpa: GPA + MEM_SIZE - 8, len: 64 }]);
  kick.signal();
  await usedReaches(g, call, 1);
  t.same(g.used(0).len, 0);
  t.same(await writeAndRead(g, call, kick, 0, 0x22), [2, 0, 0, 1]);
});

t.test('delete with a connected session closes it', async (t) => {
  const { d, path } = await daemonWithController(t);
  const f = await Front.open(t, path);
  await startQueue(t, f);
  t.equal(await d.call('vhost_delete_controller', { ctrlr: 'vhost.0' }), true);
  await f.closed;
  t.pass('front end saw the close');
});

t.test('hot-remove of the bdev stops the queues and reports NEEDS_RESET', async (t) => {
  const { d, path } = await daemonWithController(t);
  const f = await Front.open(t, path);
  const { g, call, kick } = await startQueue(t, f);
  t.same(await writeAndRead(g, call, kick, 0, 0x42), [2, 0, 0, 1]);
  await d.layer.unregister('Malloc0');
  t.equal(Number(decodeU64(0, (await f.ask(R.GET_STATUS)).payload) & 0x40n), 0x40, 'NEEDS_RESET');
  const cfg = decodeConfig(R.GET_CONFIG, (await f.ask(R.GET_CONFIG, encodeConfig({ offset: 0, size: 60 }))).payload);
  t.equal(decodeVirtioBlkConfig(cfg.payload).capacity, 0n, 'capacity 0 after removal');
  g.post([{ gpa: g.header(BlkType.IN, 0), len: 16 }, { gpa: g.alloc(512), len: 512, write: true }, { gpa: g.alloc(1), len: 1, write: true }]);
  kick.signal();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(g.usedIdx(), 2, 'a stopped queue takes nothing');
  t.match(await d.call('vhost_get_controllers'), [{ sessions: [{ started: false }] }]);
  t.equal(await d.call('vhost_delete_controller', { ctrlr: 'vhost.0' }), true);
});

t.test('INFLIGHT_SHMFD: GET_INFLIGHT_FD hands out a DPDK-layout memfd; a new connection resubmits what the last one left in flight', async (t) => {
  const { d, path } = await daemonWithController(t);
  const f = await Front.open(t, path);
  f.send(R.SET_PROTOCOL_FEATURES, encodeU64(1n << BigInt(VhostUserProtocolFeature.INFLIGHT_SHMFD)));
  const r = await f.ask(R.GET_INFLIGHT_FD, encodeInflight({ mmapSize: 0n, mmapOffset: 0n, numQueues: 2, queueSize: 128 }));
  t.same(decodeInflight(0, r.payload), { mmapSize: 4224n, mmapOffset: 0n, numQueues: 2, queueSize: 128 }, "QEMU's 2 × 128 region: 4224 bytes");
  t.equal(r.fds.length, 1, 'with its memfd');
  for (const fd of r.fds) closeFd(fd);
  // A region for one queue of 16 that the test keeps, as QEMU does.
  const inflightFd = memfdCreate('inflight', inflightRegionBytes(1, 16));
  const region = mmapFd(inflightFd, inflightRegionBytes(1, 16), 0);
  t.teardown(() => region.unmap());
  const gfd = memfdCreate('guest', MEM_SIZE);
  const gmap = mmapFd(gfd, MEM_SIZE, 0);
  t.teardown(() => gmap.unmap());
  const guest = { fd: gfd, g: new FakeGuest(16, new Uint8Array(gmap.buffer)) };
  const { g, call, kick } = await startQueue(t, f, { guest, inflightFd });
  t.same(await writeAndRead(g, call, kick, 8, 0x5a), [2, 0, 0, 1], 'I/O works with tracking');
  const ifq = new InflightQueue(new Uint8Array(region.buffer, 0, inflightQueueBytes(16)), 16);
  t.same([ifq.version, ifq.descNum, ifq.usedIdx], [1, 16, 2], 'version stamped, desc_num set, used_idx follows the ring');
  t.notOk(Array.from({ length: 16 }, (_, h) => ifq.isInflight(h)).some(Boolean), 'nothing left in flight');
  f.c.close();
  await waitSessions(d, 0);
  // A back end that died after taking a write: in flight in the region, in the avail ring, not used.
  const st = g.alloc(1, 0xee);
  const head = g.post([{ gpa: g.header(BlkType.OUT, 16), len: 16 }, { gpa: g.alloc(4096, 0x77), len: 4096 }, { gpa: st, len: 1, write: true }]);
  ifq.mark(head);
  const f2 = await Front.open(t, path);
  const q2 = await startQueue(t, f2, { guest, inflightFd });
  await usedReaches(g, q2.call, 3);
  t.equal(g.usedIdx(), 3, 'the in-flight write completed once (not taken again from the avail ring)');
  t.same([g.used(2).id, g.at(st, 1)[0]], [head, 0], 'its head, status OK');
  t.notOk(ifq.isInflight(head), 'and cleared');
  t.same(await writeAndRead(g, q2.call, q2.kick, 24, 0x12), [2, 0, 0, 1], 'new requests follow');
  closeFd(gfd);
  closeFd(inflightFd);
});

/** Waits, signal by signal, until used->idx reaches `n` (a queue also signals once at start). */
async function usedReaches(g: FakeGuest, call: EventFd, n: number): Promise<void> {
  while (g.usedIdx() < n) await new Promise<void>((r) => call.watch(() => { call.unwatch(); r(); }));
}

async function waitSessions(d: { call(m: string, p?: unknown): Promise<unknown> }, n: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const [c] = (await d.call('vhost_get_controllers', { name: 'vhost.0' })) as Array<{ sessions: unknown[] }>;
    if (c.sessions.length === n) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`sessions did not reach ${n}`);
}
