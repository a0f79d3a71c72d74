import t from 'tap';
import { join } from 'node:path';
import {
  closeFd, decodeU64, encodeLog, encodeMemoryTable, encodeU64, encodeVringAddr, encodeVringFd, encodeVringState, EventFd, memfdCreate,
  mmapFd, VHOST_VRING_F_LOG, VhostUserFlags, VhostUserProtocolFeature, VhostUserRequest as R,
  VirtioFeature,
} from '@blockwork/vhost-user';
import { BlkType } from '../src/blk-request';
import { DirtyLog, dirtyLogBytesFor } from '../src/dirty-log';
import { startDaemon } from './fixtures/daemon';
import { Front } from './fixtures/raw-front';
import { FakeGuest, GPA, MEM_SIZE, UVA } from './fixtures/fake-guest';

const V = VhostUserFlags.VERSION;
const NEED = V | VhostUserFlags.NEED_REPLY;
const PAGE = 4096;
const bit = (n: number) => 1n << BigInt(n);
const LOG_ALL = bit(VirtioFeature.LOG_ALL);
const EVENT_IDX = bit(VirtioFeature.RING_EVENT_IDX);
/** The log covers the fake guest's addresses (GPA + MEM_SIZE) with room to spare; placed at an offset in its memfd. */
const LOG_BYTES = dirtyLogBytesFor(GPA + MEM_SIZE) * 2;
const LOG_OFFSET = 128;

type T = { teardown(fn: () => unknown): void };

async function daemonWithController(t: T) {
  const { d, dir } = await startDaemon(t, { subsystems: [{ subsystem: 'bdev', config: [{ method: 'bdev_malloc_create', params: { name: 'Malloc0', num_blocks: 2048, block_size: 512 } }] }] });
  await d.call('vhost_create_blk_controller', { ctrlr: 'vhost.0', dev_name: 'Malloc0' });
  return { d, path: join(dir, 'vhost.0') };
}

/** The log as a memfd (mapped here to read the bits), LOG_OFFSET bytes into it. */
function makeLog(t: T): { fd: number; bits: Uint8Array } {
  const fd = memfdCreate('log', LOG_OFFSET + LOG_BYTES);
  const map = mmapFd(fd, LOG_BYTES, LOG_OFFSET);
  t.teardown(() => { map.unmap(); closeFd(fd); });
  return { fd, bits: new Uint8Array(map.buffer) };
}

function markedPages(bits: Uint8Array): number[] {
  const out: number[] = [];
  bits.forEach((b, i) => {
    for (let k = 0; k < 8; k++) if (b & (1 << k)) out.push(i * 8 + k);
  });
  return out;
}

function pagesOf(gpa: number, len: number): number[] {
  const out: number[] = [];
  for (let p = Math.floor(gpa / PAGE); p <= Math.floor((gpa + len - 1) / PAGE); p++) out.push(p);
  return out;
}

const union = (...sets: number[][]) => [...new Set(sets.flat())].sort((a, b) => a - b);

/** Moves the fake guest's allocator to the next page boundary. */
function padToPage(g: FakeGuest): void {
  g.alloc((PAGE - ((g.alloc(0) - GPA) % PAGE)) % PAGE);
}

/** Allocates `len` bytes starting on a fresh page, so each buffer's pages are its own. */
function allocPage(g: FakeGuest, len: number, fill?: number): number {
  padToPage(g);
  return g.alloc(Math.ceil(len / PAGE) * PAGE, fill);
}

/** A request header on a page of its own. */
function headerPage(g: FakeGuest, type: number, sector: number): number {
  padToPage(g);
  return g.header(type, sector);
}

/** Negotiates (EVENT_IDX, LOG_SHMFD, REPLY_ACK), maps a memfd as guest memory and starts queue 0. */
async function startQueue(t: T, f: Front, logUsed: boolean): Promise<{ g: FakeGuest; kick: EventFd; feats: bigint }> {
  const fd = memfdCreate('guest', MEM_SIZE);
  const map = mmapFd(fd, MEM_SIZE, 0);
  t.teardown(() => map.unmap());
  const g = new FakeGuest(16, new Uint8Array(map.buffer));
  const feats = decodeU64(0, (await f.ask(R.GET_FEATURES)).payload) & ~LOG_ALL;
  f.send(R.SET_FEATURES, encodeU64(feats));
  f.send(R.SET_PROTOCOL_FEATURES, encodeU64(bit(VhostUserProtocolFeature.LOG_SHMFD) | bit(VhostUserProtocolFeature.REPLY_ACK)));
  f.send(R.SET_MEM_TABLE, encodeMemoryTable({ regions: [{ guestPhysAddr: BigInt(GPA), memorySize: BigInt(MEM_SIZE), userspaceAddr: BigInt(UVA), mmapOffset: 0n }] }), [fd]);
  closeFd(fd);
  f.send(R.SET_VRING_NUM, encodeVringState({ index: 0, num: 16 }));
  f.send(R.SET_VRING_BASE, encodeVringState({ index: 0, num: 0 }));
  f.send(R.SET_VRING_ADDR, vringAddr(g, logUsed));
  const call = new EventFd();
  const kick = new EventFd();
  t.teardown(() => { call.close(); kick.close(); });
  f.send(R.SET_VRING_CALL, encodeVringFd(0), [call.fd]);
  f.send(R.SET_VRING_KICK, encodeVringFd(0), [kick.fd]);
  await f.ask(R.SET_VRING_ENABLE, encodeVringState({ index: 0, num: 1 }), [], NEED);
  return { g, kick, feats };
}

function vringAddr(g: FakeGuest, log: boolean): Buffer {
  return encodeVringAddr({
    index: 0, flags: log ? VHOST_VRING_F_LOG : 0,
    desc: BigInt(UVA + g.descOff), avail: BigInt(UVA + g.availOff), used: BigInt(UVA + g.usedOff), log: log ? BigInt(GPA + g.usedOff) : 0n,
  });
}

/** Polls used->idx (with EVENT_IDX the device signals only when used_event asks). */
async function usedReaches(g: FakeGuest, n: number): Promise<void> {
  for (let i = 0; g.usedIdx() < n; i++) {
    if (i > 500) throw new Error(`used idx stuck at ${g.usedIdx()}, want ${n}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * One write (4 KiB), one read (8 KiB, across two pages) and one GET_ID, each buffer on pages of its
 * own. Returns the pages the device wrote: the read's data, the id string and the three status bytes
 * (not the headers, not the write's data).
 */
async function io(g: FakeGuest, kick: EventFd, sector: number, fill: number): Promise<{ written: number[]; ok: boolean }> {
  const start = g.usedIdx();
  const wst = allocPage(g, 1, 0xee);
  g.post([{ gpa: headerPage(g, BlkType.OUT, sector), len: 16 }, { gpa: allocPage(g, PAGE, fill), len: PAGE }, { gpa: wst, len: 1, write: true }]);
  kick.signal();
  await usedReaches(g, start + 1);
  const data = allocPage(g, 2 * PAGE, 0);
  const rst = allocPage(g, 1, 0xee);
  const id = allocPage(g, 20, 0xff);
  const ist = allocPage(g, 1, 0xee);
  g.post([{ gpa: headerPage(g, BlkType.IN, sector), len: 16 }, { gpa: data, len: 2 * PAGE, write: true }, { gpa: rst, len: 1, write: true }]);
  g.post([{ gpa: headerPage(g, BlkType.GET_ID, 0), len: 16 }, { gpa: id, len: 20, write: true }, { gpa: ist, len: 1, write: true }]);
  kick.signal();
  await usedReaches(g, start + 3);
  const ok = g.at(wst, 1)[0] === 0 && g.at(rst, 1)[0] === 0 && g.at(ist, 1)[0] === 0 && g.at(data, PAGE).every((b) => b === fill);
  return { written: union(pagesOf(data, 2 * PAGE), pagesOf(id, 20), pagesOf(wst, 1), pagesOf(rst, 1), pagesOf(ist, 1)), ok };
}

t.test('DirtyLog: SET_LOG_BASE payload, fd count and range checks; marks; overflow reported once; replace', async (t) => {
  const overflows: string[] = [];
  const log = new DirtyLog((gpa, len, bytes) => overflows.push(`${gpa}+${len}/${bytes}`));
  const fd = memfdCreate('log', 4096);
  t.teardown(() => { log.release(); closeFd(fd); });
  t.throws(() => log.set(R.SET_LOG_BASE, Buffer.alloc(8), [fd]), /payload is 8 bytes/);
  t.throws(() => log.set(R.SET_LOG_BASE, encodeLog({ mmapSize: 64n, mmapOffset: 0n }), []), /expected one fd, got 0/);
  t.throws(() => log.set(R.SET_LOG_BASE, encodeLog({ mmapSize: 64n, mmapOffset: 0n }), [fd, fd]), /expected one fd, got 2/);
  t.throws(() => log.set(R.SET_LOG_BASE, encodeLog({ mmapSize: 0n, mmapOffset: 0n }), [fd]), /out of range/);
  t.throws(() => log.set(R.SET_LOG_BASE, encodeLog({ mmapSize: 4096n, mmapOffset: 1n }), [fd]), /passes the end of the fd \(4096 bytes\)/);
  t.throws(() => log.set(R.SET_LOG_BASE, encodeLog({ mmapSize: 1n << 62n, mmapOffset: 0n }), [fd]), /out of range/);
  t.notOk(log.mapped, 'nothing mapped after bad requests');
  log.set(R.SET_LOG_BASE, encodeLog({ mmapSize: 16n, mmapOffset: 8n }), [fd]);
  t.equal(log.size, 16);
  log.mark(5 * PAGE + 100, 2 * PAGE); // pages 5, 6, 7
  log.mark(127 * PAGE, 1); // last page the 16-byte log covers
  log.mark(126 * PAGE, 4 * PAGE); // 126, 127 set; 128, 129 beyond
  log.mark(200 * PAGE, 1);
  const whole = mmapFd(fd, 4096, 0);
  t.teardown(() => whole.unmap());
  const view = new Uint8Array(whole.buffer);
  t.same([...view.subarray(8, 24)].map((b, i) => [i, b]).filter(([, b]) => b !== 0), [[0, 0xe0], [15, 0xc0]], 'pages 5-7 and 126-127, 8 bytes into the fd');
  t.same(overflows, [`${126 * PAGE}+${4 * PAGE}/16`], 'overflow reported once, nothing written past the log');
  t.ok(view.subarray(24).every((b) => b === 0) && view.subarray(0, 8).every((b) => b === 0), 'bytes outside the log untouched');
  log.set(R.SET_LOG_BASE, encodeLog({ mmapSize: 8n, mmapOffset: 1024n }), [fd]);
  log.mark(0, 1);
  t.equal(view[1024], 1, 'a new SET_LOG_BASE replaces the log');
  t.equal(view[8], 0xe0, 'the old log is no longer written');
});

t.test('LOG_ALL + LOG_SHMFD over a real socket: exactly the written pages and the used ring are marked, nothing without LOG_ALL', async (t) => {
  const { path } = await daemonWithController(t);
  const f = await Front.open(t, path);
  const { g, kick, feats } = await startQueue(t, f, false);
  t.ok(decodeU64(0, (await f.ask(R.GET_FEATURES)).payload) & LOG_ALL, 'LOG_ALL offered');
  t.ok(feats & EVENT_IDX, 'EVENT_IDX on: avail_event is written into the used ring too');
  const { fd, bits } = makeLog(t);
  const reply = await f.ask(R.SET_LOG_BASE, encodeLog({ mmapSize: BigInt(LOG_BYTES), mmapOffset: BigInt(LOG_OFFSET) }), [fd]);
  t.same([reply.request, reply.payload.length, reply.flags & VhostUserFlags.REPLY], [R.SET_LOG_BASE, 0, VhostUserFlags.REPLY], 'SET_LOG_BASE is answered with an empty reply, as QEMU 7.2 waits for');

  let r = await io(g, kick, 8, 0x5a);
  t.ok(r.ok, 'I/O without LOG_ALL');
  t.same(markedPages(bits), [], 'no bits while LOG_ALL is off (log mapped)');

  // Migration start as QEMU 7.2 does it with queues running: SET_FEATURES with LOG_ALL, then
  // SET_VRING_ADDR with VHOST_VRING_F_LOG, each waiting for its REPLY_ACK.
  t.equal(decodeU64(0, (await f.ask(R.SET_FEATURES, encodeU64(feats | LOG_ALL), [], NEED)).payload), 0n, 'SET_FEATURES LOG_ALL acked');
  t.equal(decodeU64(0, (await f.ask(R.SET_VRING_ADDR, vringAddr(g, true), [], NEED)).payload), 0n, 'SET_VRING_ADDR with LOG acked');
  r = await io(g, kick, 16, 0xa5);
  t.ok(r.ok, 'I/O with LOG_ALL');
  const usedRing = pagesOf(GPA + g.usedOff, 6 + 8 * 16);
  t.same(markedPages(bits), union(r.written, usedRing), 'exactly the read data, id, status bytes and used ring pages');

  // Harvest as QEMU does (exchange to zero), then migration end: LOG_ALL off.
  bits.fill(0);
  await f.ask(R.SET_FEATURES, encodeU64(feats), [], NEED);
  await f.ask(R.SET_VRING_ADDR, vringAddr(g, false), [], NEED);
  r = await io(g, kick, 24, 0x3c);
  t.ok(r.ok, 'I/O after LOG_ALL is cleared');
  t.same(markedPages(bits), [], 'no bits after LOG_ALL is cleared');
});

t.test('LOG_ALL with a queue started with the LOG flag: used ring logged from the start; GET_VRING_BASE leaves every bit set', async (t) => {
  const { path } = await daemonWithController(t);
  const f = await Front.open(t, path);
  const { fd, bits } = makeLog(t);
  const { g, kick, feats } = await startQueue(t, f, true);
  await f.ask(R.SET_LOG_BASE, encodeLog({ mmapSize: BigInt(LOG_BYTES), mmapOffset: BigInt(LOG_OFFSET) }), [fd]);
  await f.ask(R.SET_FEATURES, encodeU64(feats | LOG_ALL), [], NEED);
  const r = await io(g, kick, 32, 0x77);
  const base = await f.ask(R.GET_VRING_BASE, encodeVringState({ index: 0, num: 0 }));
  t.equal(base.payload.readUInt32LE(4), 3, 'stopped after three requests');
  t.same(markedPages(bits), union(r.written, pagesOf(GPA + g.usedOff, 6 + 8 * 16)), 'every page the device wrote is marked when the queue has stopped');
});

t.test('a bad SET_LOG_BASE closes that connection only; the daemon keeps serving another one', async (t) => {
  const { d, path } = await daemonWithController(t);
  const good = await Front.open(t, path);
  const { g, kick, feats } = await startQueue(t, good, true);
  const { fd, bits } = makeLog(t);
  await good.ask(R.SET_LOG_BASE, encodeLog({ mmapSize: BigInt(LOG_BYTES), mmapOffset: BigInt(LOG_OFFSET) }), [fd]);
  await good.ask(R.SET_FEATURES, encodeU64(feats | LOG_ALL), [], NEED);
  const shmfd = encodeU64(bit(VhostUserProtocolFeature.LOG_SHMFD));
  const hostile: Array<[string, (f: Front) => void]> = [
    ['no fd', (f) => {
      f.send(R.SET_PROTOCOL_FEATURES, shmfd);
      f.send(R.SET_LOG_BASE, encodeLog({ mmapSize: 64n, mmapOffset: 0n }));
    }],
    ['size beyond the file', (f) => {
      f.send(R.SET_PROTOCOL_FEATURES, shmfd);
      f.send(R.SET_LOG_BASE, encodeLog({ mmapSize: BigInt(LOG_OFFSET + LOG_BYTES + 1), mmapOffset: 0n }), [fd]);
    }],
    ['offset beyond the file', (f) => {
      f.send(R.SET_PROTOCOL_FEATURES, shmfd);
      f.send(R.SET_LOG_BASE, encodeLog({ mmapSize: 8n, mmapOffset: BigInt(LOG_OFFSET + LOG_BYTES) }), [fd]);
    }],
    ['short payload', (f) => {
      f.send(R.SET_PROTOCOL_FEATURES, shmfd);
      f.send(R.SET_LOG_BASE, Buffer.alloc(8), [fd]);
    }],
    ['LOG_SHMFD not negotiated', (f) => f.send(R.SET_LOG_BASE, encodeLog({ mmapSize: 64n, mmapOffset: 0n }), [fd])],
  ];
  for (const [name, act] of hostile) {
    const f = await Front.open(t, path);
    act(f);
    await f.closed;
    t.pass(`${name}: connection closed`);
  }
  const r = await io(g, kick, 40, 0x42);
  t.ok(r.ok, 'the first connection still works');
  t.same(markedPages(bits), union(r.written, pagesOf(GPA + g.usedOff, 6 + 8 * 16)), 'and still logs into its own log');
  t.equal((await d.call('vhost_get_controllers') as Array<{ sessions: unknown[] }>)[0].sessions.length, 1, 'only the good session is left');
});
