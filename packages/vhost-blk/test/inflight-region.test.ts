import t from 'tap';
import { type IoCallback, type IoChannel } from '@blockwork/core';
import { BlkQueue, type BlkQueueContext, type InflightStep } from '../src/blk-queue';
import { BlkStatus, BlkType } from '../src/blk-request';
import { InflightQueue, inflightQueueBytes, inflightRegionBytes } from '../src/inflight-region';
import { MALLOC_DEV, mallocChannel } from './fixtures/malloc-channel';
import { FakeGuest } from './fixtures/fake-guest';

const SIZE = 16;
const REQUESTS = 4;
/** Order in which the first process's bdev completes the requests (out of order on purpose). */
const COMPLETION_ORDER = [2, 0, 1, 3];
const dev = MALLOC_DEV;


/** A bdev channel that holds every I/O until the test completes it (the first process's device). */
function heldChannel(): { ch: IoChannel; held: Array<() => void> } {
  const held: Array<() => void> = [];
  const hold = (cb: IoCallback, arg: unknown) => {
    held.push(() => cb(0, arg));
  };
  const ch = {
    read: (_i: unknown, _o: number, _n: number, cb: IoCallback, arg: unknown) => hold(cb, arg),
    write: (_i: unknown, _o: number, _n: number, cb: IoCallback, arg: unknown) => hold(cb, arg),
    flush: (_o: number, _n: number, cb: IoCallback, arg: unknown) => hold(cb, arg),
    unmap: (_o: number, _n: number, cb: IoCallback, arg: unknown) => hold(cb, arg),
    writeZeroes: (_o: number, _n: number, cb: IoCallback, arg: unknown) => hold(cb, arg),
  };
  return { ch: ch as unknown as IoChannel, held };
}

function ctxOf(channel: IoChannel): BlkQueueContext {
  return { dev, channel, onGuestError: () => undefined };
}

class Crash extends Error {}

const turn = () => new Promise((r) => setImmediate(r));

interface World {
  guest: Uint8Array;
  region: Uint8Array;
  statuses: number[];
}

/** Posts REQUESTS writes (3 descriptors each) into a fresh guest; returns memory and status addresses. */
function freshWorld(): { g: FakeGuest; region: Uint8Array; statuses: number[]; heads: number[] } {
  const g = new FakeGuest(SIZE);
  const region = new Uint8Array(inflightRegionBytes(1, SIZE));
  const statuses: number[] = [];
  const heads: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const st = g.alloc(1, 0xee);
    statuses.push(st);
    heads.push(g.post([{ gpa: g.header(BlkType.OUT, i * 8), len: 16 }, { gpa: g.alloc(4096, i + 1), len: 4096 }, { gpa: st, len: 1, write: true }]));
  }
  return { g, region, statuses, heads };
}

/**
 * First process: takes every request, completes them in COMPLETION_ORDER, and "dies" at the
 * `n`th occurrence of `step`: the memory at that instant (guest RAM and inflight region) is copied,
 * which is exactly what a SIGKILLed back end leaves behind for the next one.
 */
function runUntilCrash(step: InflightStep | null, n: number): { world: World; taken: number[] } {
  const { g, region, statuses } = freshWorld();
  const ifq = new InflightQueue(region, SIZE);
  ifq.setDescNum(SIZE);
  const { ch, held } = heldChannel();
  const taken: number[] = [];
  let seen = 0;
  let snapshot: World | null = null;
  const probe = (s: InflightStep, head: number) => {
    if (s === 'marked') taken.push(head);
    if (s === step && ++seen === n) {
      snapshot = { guest: g.bytes.slice(), region: region.slice(), statuses };
      throw new Crash(`${s} #${n} (head ${head})`);
    }
  };
  const q = new BlkQueue(0, g.queue(false), g.mem, ctxOf(ch), () => undefined, { inflight: ifq, probe });
  if (!ifq.recover(q.vq.ringUsedIdx()).fresh) throw new Error('a fresh region must recover nothing');
  try {
    q.process();
    for (const i of COMPLETION_ORDER) held[i]();
  } catch (e) {
    if (!(e instanceof Crash)) throw e;
  }
  return { world: snapshot ?? { guest: g.bytes.slice(), region: region.slice(), statuses }, taken };
}

/** The next process over the same memory: recover, resubmit, then take new entries; all on a real malloc bdev. */
async function recoverWorld(t: { teardown(fn: () => unknown): void }, w: World): Promise<{ g: FakeGuest; resubmitted: number[]; fixedUp: boolean }> {
  const g = new FakeGuest(SIZE, w.guest);
  const ifq = new InflightQueue(w.region, SIZE);
  // QEMU sends SET_VRING_BASE = used->idx after a backend it lost (vhost_virtqueue_stop's fallback).
  const q = new BlkQueue(0, g.queue(false, g.usedIdx()), g.mem, ctxOf(mallocChannel(t)), () => undefined, { inflight: ifq });
  const rec = ifq.recover(q.vq.ringUsedIdx());
  q.resubmit(rec.heads);
  q.process();
  for (let i = 0; i < 50 && q.inflight > 0; i++) await turn();
  await turn();
  return { g, resubmitted: rec.heads, fixedUp: rec.fixedUp };
}

t.test('layout: 16-byte header + 16 bytes per descriptor, 64-byte aligned per queue (DPDK)', async (t) => {
  t.equal(inflightQueueBytes(128), 2112, '128 descriptors: 2064 rounded to 2112');
  t.equal(inflightRegionBytes(2, 128), 4224, "QEMU's 2 × 128 region is 4224 bytes");
  t.equal(inflightQueueBytes(1), 64);
  t.throws(() => new InflightQueue(new Uint8Array(100), 16), RangeError, 'a short slice is refused');
});

t.test('mark, last batch head, clear and used_idx land at the DPDK offsets', async (t) => {
  const bytes = new Uint8Array(inflightQueueBytes(8));
  const v = new DataView(bytes.buffer);
  const q = new InflightQueue(bytes, 8);
  q.setDescNum(8);
  q.recover(0);
  t.equal(v.getUint16(8, true), 1, 'version stamped');
  t.equal(v.getUint16(10, true), 8, 'desc_num');
  q.mark(5);
  q.mark(3);
  t.equal(bytes[16 + 5 * 16], 1, 'inflight flag of head 5');
  t.equal(v.getUint32(16 + 5 * 16 + 8, true), 1, 'counter of head 5');
  t.equal(v.getUint32(16 + 3 * 16 + 8, true), 2, 'counter of head 3 is larger');
  q.setLastBatchHead(3);
  q.clear(3);
  q.setUsedIdx(7);
  t.equal(v.getUint16(12, true), 3, 'last_batch_head');
  t.equal(v.getUint16(14, true), 7, 'used_idx');
  t.equal(bytes[16 + 3 * 16], 0, 'head 3 cleared');
});

t.test('recovery orders by counter, applies the used_idx fix-up and continues the counter', async (t) => {
  const bytes = new Uint8Array(inflightQueueBytes(8));
  const v = new DataView(bytes.buffer);
  v.setUint16(8, 1, true); // a region a previous back end used
  const set = (head: number, counter: number) => {
    bytes[16 + head * 16] = 1;
    v.setUint32(16 + head * 16 + 8, counter, true);
  };
  set(6, 40);
  set(1, 10);
  set(4, 30);
  v.setUint16(12, 4, true); // last_batch_head = 4, published but not cleared
  v.setUint16(14, 9, true); // saved used_idx 9, ring says 10
  const q = new InflightQueue(bytes, 8);
  const rec = q.recover(10);
  t.same(rec.heads, [1, 6], 'head 4 counted as completed; the rest oldest first');
  t.equal(rec.fixedUp, true);
  t.equal(v.getUint16(14, true), 10, 'used_idx caught up');
  q.mark(2);
  t.equal(v.getUint32(16 + 2 * 16 + 8, true), 41, 'new counters continue above the old ones');
  const again = new InflightQueue(bytes, 8).recover(10);
  t.same(again.heads, [1, 6, 2], 'no fix-up when used_idx matches; order by counter');
  const bad = new Uint8Array(inflightQueueBytes(8));
  new DataView(bad.buffer).setUint16(8, 1, true);
  new DataView(bad.buffer).setUint16(12, 0xffff, true);
  new DataView(bad.buffer).setUint16(14, 3, true);
  t.same(new InflightQueue(bad, 8).recover(0).heads, [], 'a last_batch_head out of range is ignored');
});

const STEPS: InflightStep[] = ['marked', 'submitted', 'used-written', 'batch-head', 'published', 'cleared', 'saved'];

t.test('a crash at every step of the bookkeeping: recovery resubmits exactly the unfinished heads, each completes once', async (t) => {
  const { heads } = freshWorld();
  for (const step of STEPS) {
    for (let n = 1; n <= REQUESTS; n++) {
      await t.test(`crash at ${step} #${n}`, async (t) => {
        const { world, taken } = runUntilCrash(step, n);
        const before = new FakeGuest(SIZE, world.guest.slice());
        const published = new Set<number>();
        for (let i = 0; i < before.usedIdx(); i++) published.add(before.used(i).id);
        const expected = taken.filter((h) => !published.has(h));
        const { g, resubmitted } = await recoverWorld(t, world);
        t.same(resubmitted, expected, `resubmitted ${JSON.stringify(expected)} (taken ${JSON.stringify(taken)}, published ${JSON.stringify([...published])})`);
        t.equal(g.usedIdx(), REQUESTS, 'used->idx counts every request once');
        const ids = Array.from({ length: REQUESTS }, (_, i) => g.used(i).id).sort((a, b) => a - b);
        t.same(ids, [...heads].sort((a, b) => a - b), 'every head appears exactly once in the used ring');
        t.same(world.statuses.map((s) => g.at(s, 1)[0]), Array(REQUESTS).fill(BlkStatus.OK), 'every request succeeded');
      });
    }
  }
});

t.test('no crash: nothing is resubmitted after a clean run', async (t) => {
  const { world } = runUntilCrash(null, 0);
  const { g, resubmitted, fixedUp } = await recoverWorld(t, world);
  t.same(resubmitted, []);
  t.equal(fixedUp, false);
  t.equal(g.usedIdx(), REQUESTS);
});

t.test('a crash during recovery is recovered again, still in the original order', async (t) => {
  const { world, taken } = runUntilCrash('cleared', 1); // request 2 published, 0, 1, 3 in flight
  const g = new FakeGuest(SIZE, world.guest);
  const ifq = new InflightQueue(world.region, SIZE);
  const { ch, held } = heldChannel();
  const q = new BlkQueue(0, g.queue(false, g.usedIdx()), g.mem, ctxOf(ch), () => undefined, { inflight: ifq });
  const rec = ifq.recover(q.vq.ringUsedIdx());
  t.same(rec.heads, taken.filter((h) => h !== taken[2]), 'three heads in take order');
  q.resubmit(rec.heads);
  held[1](); // one of them completes, then the second back end dies too
  const second = await recoverWorld(t, { guest: g.bytes.slice(), region: world.region.slice(), statuses: world.statuses });
  t.same(second.resubmitted, rec.heads.filter((_, i) => i !== 1), 'the two still unfinished, original order');
  t.equal(second.g.usedIdx(), REQUESTS);
});
