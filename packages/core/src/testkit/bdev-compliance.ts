import { randomBytes } from 'node:crypto';
import { Errno } from '../errno';
import type { Daemon } from '../daemon';
import { allocAligned } from '../aligned-buffer';
import type { IoChannel } from '../bdev/io-channel';
import { IoType } from '../bdev/types';

/** A check of the compliance suite: throws (with a message saying what differed) when the bdev misbehaves. */
export interface ComplianceCheck {
  name: string;
  /** Only meaningful for bdevs that store data (not null). */
  needsData?: boolean;
  run(ctx: ComplianceContext): Promise<void>;
}

export interface ComplianceContext {
  daemon: Daemon;
  /** Name of a fresh bdev (at least 64 blocks) created by the suite's caller. */
  bdev: string;
  /** Starts a new daemon from a saved config (for the round trip), stopped by the suite. */
  restart(config: unknown): Promise<Daemon>;
}

function submit(ch: IoChannel, type: IoType, off: number, n: number, iovs: Uint8Array[] = []): Promise<number> {
  return new Promise((resolve) => ch.submit(type, off, n, iovs, (status) => resolve(status)));
}

function expectStatus(what: string, got: number, want: number): void {
  if (got !== want) throw new Error(`${what}: status ${got}, expected ${want}`);
}

function expectBytes(what: string, got: Uint8Array, want: Uint8Array): void {
  const i = got.findIndex((b, k) => b !== want[k]);
  if (got.length !== want.length || i >= 0) throw new Error(`${what}: data differs at byte ${i} (len ${got.length} vs ${want.length})`);
}

async function withChannel<T>(ctx: ComplianceContext, fn: (ch: IoChannel, bs: number, blocks: number) => Promise<T>): Promise<T> {
  const desc = ctx.daemon.layer.open(ctx.bdev, true);
  try {
    return await fn(desc.getIoChannel(), desc.bdev.blockSize, desc.bdev.numBlocks);
  } finally {
    desc.close();
  }
}

async function zeroCheck(ctx: ComplianceContext, type: IoType): Promise<void> {
  await withChannel(ctx, async (ch, bs) => {
    if (!ch.bdev.ioTypeSupported(type)) return;
    const data = allocAligned(8 * bs, 4096);
    data.set(randomBytes(8 * bs));
    expectStatus('write', await submit(ch, IoType.WRITE, 4, 8, [data]), 0);
    expectStatus(IoType[type], await submit(ch, type, 4, 8), 0);
    const back = allocAligned(8 * bs, 4096);
    back.fill(0xee);
    expectStatus('read', await submit(ch, IoType.READ, 4, 8, [back]), 0);
    expectBytes(`read after ${IoType[type]}`, back, Buffer.alloc(8 * bs));
  });
}

/**
 * The bdev compliance suite every bdev package runs against itself (malloc included), as SPDK's
 * bdev types share one suite: read after write, bounds, buffer sizes, flush, unmap, write_zeroes,
 * reset, hot-remove with I/O in flight, and the config round trip.
 */
export const bdevComplianceChecks: ComplianceCheck[] = [
  {
    name: 'read after write, vectored, at start, middle and last block',
    needsData: true,
    run: (ctx) => withChannel(ctx, async (ch, bs, blocks) => {
      for (const off of [0, Math.floor(blocks / 2) - 1, blocks - 3]) {
        const parts = [allocAligned(bs, 4096), allocAligned(2 * bs, 4096)];
        for (const p of parts) p.set(randomBytes(p.length));
        expectStatus(`write at ${off}`, await submit(ch, IoType.WRITE, off, 3, parts), 0);
        const back = allocAligned(3 * bs, 4096);
        expectStatus(`read at ${off}`, await submit(ch, IoType.READ, off, 3, [back]), 0);
        expectBytes(`read at ${off}`, back, Buffer.concat(parts));
      }
    }),
  },
  {
    name: 'I/O past the end, of zero blocks, or with a wrong buffer size fails with -EINVAL',
    run: (ctx) => withChannel(ctx, async (ch, bs, blocks) => {
      const buf = allocAligned(2 * bs, 4096);
      expectStatus('read past end', await submit(ch, IoType.READ, blocks - 1, 2, [buf]), -Errno.EINVAL);
      expectStatus('write past end', await submit(ch, IoType.WRITE, blocks, 1, [buf.subarray(0, bs)]), -Errno.EINVAL);
      expectStatus('zero-length read', await submit(ch, IoType.READ, 0, 0, []), -Errno.EINVAL);
      expectStatus('short buffer', await submit(ch, IoType.WRITE, 0, 2, [buf.subarray(0, bs)]), -Errno.EINVAL);
    }),
  },
  {
    name: 'flush succeeds when supported, -ENOTSUP otherwise',
    run: (ctx) => withChannel(ctx, async (ch, _bs, blocks) => {
      const want = ch.bdev.ioTypeSupported(IoType.FLUSH) ? 0 : -Errno.ENOTSUP;
      expectStatus('flush', await submit(ch, IoType.FLUSH, 0, blocks), want);
    }),
  },
  { name: 'unmap reads back zeros (when supported)', needsData: true, run: (ctx) => zeroCheck(ctx, IoType.UNMAP) },
  { name: 'write_zeroes reads back zeros (when supported)', needsData: true, run: (ctx) => zeroCheck(ctx, IoType.WRITE_ZEROES) },
  {
    name: 'reset completes when supported',
    run: (ctx) => withChannel(ctx, async (ch) => {
      const want = ch.bdev.ioTypeSupported(IoType.RESET) ? 0 : -Errno.ENOTSUP;
      expectStatus('reset', await submit(ch, IoType.RESET, 0, 0), want);
    }),
  },
  {
    name: 'config round trip: the saved entry recreates an identical bdev',
    run: async (ctx) => {
      const saved = await ctx.daemon.call('framework_get_config', { name: 'bdev' });
      const before = (await ctx.daemon.call('bdev_get_bdevs', { name: ctx.bdev })) as unknown[];
      const d2 = await ctx.restart({ subsystems: [{ subsystem: 'bdev', config: saved }] });
      const after = (await d2.call('bdev_get_bdevs', { name: ctx.bdev })) as unknown[];
      const again = await d2.call('framework_get_config', { name: 'bdev' });
      if (JSON.stringify(after) !== JSON.stringify(before)) throw new Error(`bdev differs after restart:\n${JSON.stringify(before)}\n${JSON.stringify(after)}`);
      if (JSON.stringify(again) !== JSON.stringify(saved)) throw new Error('framework_get_config differs after restart');
    },
  },
  {
    name: 'hot-remove: in-flight I/O completes, the owner hears "remove", later I/O fails with -ENODEV',
    run: async (ctx) => {
      const layer = ctx.daemon.layer;
      let heard = false;
      const desc = layer.open(ctx.bdev, true, (ev) => { if (ev === 'remove') heard = true; });
      const ch = desc.getIoChannel();
      const bs = desc.bdev.blockSize;
      const inflight = Array.from({ length: 16 }, (_, i) => submit(ch, IoType.WRITE, i, 1, [allocAligned(bs, 4096)]));
      const removed = layer.unregister(ctx.bdev);
      const statuses = await Promise.all(inflight);
      for (const s of statuses) if (s !== 0 && s !== -Errno.ENODEV && s !== -Errno.ECANCELED) throw new Error(`in-flight I/O ended with ${s}`);
      await removed;
      if (!heard) throw new Error('descriptor owner was not told of the removal');
      expectStatus('I/O after removal', await submit(ch, IoType.READ, 0, 1, [allocAligned(bs, 4096)]), -Errno.ENODEV);
      desc.close();
      if (layer.get(ctx.bdev)) throw new Error('bdev still registered after removal');
    },
  },
];

/** The part of a tap Test the runner uses (so core does not depend on tap). */
export interface TapLike {
  test(name: string, fn: (t: TapLike) => Promise<void>): unknown;
  teardown(fn: () => unknown): void;
  resolves(p: Promise<unknown>, message?: string): Promise<unknown>;
}

/**
 * Runs every compliance check as its own subtest, each on a fresh in-process daemon with `plugins`
 * loaded, where `create` makes the bdev under test (through RPC) and returns its name.
 */
export function runBdevCompliance(
  tap: unknown,
  kind: string,
  opts: { plugins: string[]; create(d: Daemon): Promise<string>; storesData?: boolean },
): void {
  // tap's Test has overloads TypeScript cannot match structurally; only these three members are used.
  const t = tap as TapLike;
  // Required lazily: daemon.ts imports this module's siblings, and the testkit must stay optional.
  const { Daemon: DaemonClass } = require('../daemon') as typeof import('../daemon');
  const { createLogger } = require('../logger') as typeof import('../logger');
  const log = createLogger('silent');
  const start = (config: unknown) => DaemonClass.start({ rpcSocket: null, logger: log, config: { plugins: opts.plugins, ...(config as object) } });
  for (const check of bdevComplianceChecks) {
    if (opts.storesData === false && check.needsData) continue;
    t.test(`${kind} compliance: ${check.name}`, async (t) => {
      const daemon = await start({});
      t.teardown(() => daemon.stop());
      const bdev = await opts.create(daemon);
      const extra: Daemon[] = [];
      t.teardown(() => Promise.all(extra.map((d) => d.stop())));
      const restart = async (cfg: unknown) => {
        const d = await start(cfg);
        extra.push(d);
        return d;
      };
      await t.resolves(check.run({ daemon, bdev, restart }), check.name);
    });
  }
}
