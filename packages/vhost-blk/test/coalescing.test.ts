import t from 'tap';
import { BlkQueue, type BlkQueueContext, type Coalescing, coalescingDelayMs, MAX_IRQ_DELAY_MS } from '../src/blk-queue';
import { BlkStatus, BlkType } from '../src/blk-request';
import { MALLOC_DEV, mallocChannel } from './fixtures/malloc-channel';
import { FakeGuest } from './fixtures/fake-guest';

const dev = MALLOC_DEV;


t.test("SPDK's rule: delay_base × (rate − threshold) / threshold, nothing at or below the threshold", async (t) => {
  const c: Coalescing = { delayBaseUs: 20, iopsThreshold: 60000 };
  t.equal(coalescingDelayMs(c, 600, 10), 0, '60k IOPS: no delay');
  t.equal(coalescingDelayMs(c, 1200, 10), 0.02, '120k IOPS: delay_base');
  t.equal(coalescingDelayMs(c, 2400, 10), 0.06, '240k IOPS: 3 × delay_base');
  t.equal(coalescingDelayMs(c, 2400, 20), 0.02, 'the rate, not the count, decides');
  t.equal(coalescingDelayMs({ delayBaseUs: 0, iopsThreshold: 60000 }, 1e6, 10), 0, 'delay_base 0 disables it');
  t.equal(coalescingDelayMs(undefined, 1e6, 10), 0);
  t.equal(coalescingDelayMs({ delayBaseUs: 1000, iopsThreshold: 100 }, 1e6, 10), MAX_IRQ_DELAY_MS, 'capped');
});

/** Runs batches of 8 FLUSH requests through a real malloc channel for `ms`; counts batches and call signals. */
async function drive(t: { teardown(fn: () => unknown): void }, ms: number, coalescing?: Coalescing) {
  const g = new FakeGuest(16);
  const ctx: BlkQueueContext = { dev, channel: mallocChannel(t), onGuestError: () => {}, coalescing };
  let signals = 0;
  let lastSignal = 0;
  const q = new BlkQueue(0, g.queue(false), g.mem, ctx, () => {
    signals++;
    lastSignal = performance.now();
  });
  const hdr = g.header(BlkType.FLUSH, 0);
  const st = g.alloc(1, 0xee);
  let lastCompletion = 0;
  const post = () => g.post([{ gpa: hdr, len: 16 }, { gpa: st, len: 1, write: true }]);
  let batches = 0;
  const end = performance.now() + ms;
  for (; performance.now() < end; batches++) {
    for (let i = 0; i < 8; i++) post();
    q.process();
    while (q.inflight > 0 || q.vq.unpublished > 0) await new Promise((r) => setImmediate(r));
    lastCompletion = performance.now();
  }
  return { g, q, st, post, batches, signals: () => signals, lastSignal: () => lastSignal, lastCompletion };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('above the threshold call signals are spaced out; none is lost; an idle queue is signalled at once', async (t) => {
  const plain = await drive(t, 100);
  t.equal(plain.signals(), plain.batches, 'no coalescing: one signal per batch');
  // 100 IOPS threshold, 10 ms base: from 600 IOPS up (a loaded machine) the delay is the 50 ms cap,
  // several batches long. The first 10 ms interval has no rate yet and is signalled per batch.
  const co = await drive(t, 300, { delayBaseUs: 10_000, iopsThreshold: 100 });
  t.equal(co.g.at(co.st, 1)[0], BlkStatus.OK);
  t.ok(co.signals() * 3 < co.batches, `${co.signals()} signals for ${co.batches} batches under coalescing`);
  for (let i = 0; i < 300 && co.lastSignal() < co.lastCompletion; i++) await sleep(10);
  t.ok(co.lastSignal() >= co.lastCompletion, 'the last completion was signalled (timer) after the load stopped');
  await sleep(50);
  const before = co.signals();
  co.post();
  co.q.process();
  for (let i = 0; i < 50 && co.signals() === before; i++) await new Promise((r) => setImmediate(r));
  t.equal(co.signals(), before + 1, 'a lone request after a quiet interval is signalled without delay');
});

t.test('stop() delivers a signal coalescing held back', async (t) => {
  const co = await drive(t, 50, { delayBaseUs: 1_000_000, iopsThreshold: 100 });
  co.post();
  co.q.process();
  while (co.q.inflight > 0) await new Promise((r) => setImmediate(r));
  const before = co.signals();
  await co.q.stop();
  t.ok(co.signals() > before, 'signalled on stop');
});
