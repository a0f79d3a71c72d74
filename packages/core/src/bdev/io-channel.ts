import { Errno } from '../errno';
import type { IoStat } from './iostat';
import { type Bdev, type BdevChannel, type BdevFilter, type BdevIo, IoType, type IoCallback } from './types';

const EINVAL = -Errno.EINVAL;
const ENODEV = -Errno.ENODEV;
const ENOTSUP = -Errno.ENOTSUP;
const EBADF = -Errno.EBADF;

/** A pooled I/O with the layer's bookkeeping around the driver-visible part. */
interface LayerIo extends BdevIo {
  cb: IoCallback | null;
  arg: unknown;
  start: number;
  bytes: number;
  /** Split parent, when this I/O is one child of a split. */
  parent: LayerIo | null;
  /** Children still outstanding (parent only) and the first failure among them. */
  pending: number;
  firstError: number;
}

/**
 * State shared by every descriptor's channel to one bdev: the driver channel, the I/O pool and the
 * statistics. One per bdev per thread, as SPDK keeps one io_channel per bdev per thread.
 */
export class SharedChannel {
  readonly pool: LayerIo[] = [];
  inflight = 0;
  removed = false;
  private drainWaiters: Array<() => void> = [];
  /**
   * Completions of I/Os refused before reaching the driver: delivered on the next check phase, never
   * inside submit, and not as a microtask, so a caller resubmitting on failure still yields to the loop.
   */
  private deferred: Array<{ cb: IoCallback; arg: unknown; status: number }> = [];
  private deferredScheduled = false;
  readonly onDriverDone: (io: BdevIo, status: number) => void;

  /** Where I/O goes: the driver channel, or the first of the filters in front of it. */
  driver: BdevChannel;

  constructor(
    readonly bdev: Bdev,
    /** The driver's own channel, below every filter. */
    readonly base: BdevChannel,
    readonly stat: IoStat,
    filters: readonly BdevFilter[] = [],
  ) {
    this.onDriverDone = (io, status) => this.complete(io as LayerIo, status);
    this.driver = base;
    this.setFilters(filters);
  }

  /** Rebuilds the chain in front of the driver; I/O already passed on is not affected. */
  setFilters(filters: readonly BdevFilter[]): void {
    let next = this.base;
    for (let i = filters.length - 1; i >= 0; i--) {
      const f = filters[i];
      const below = next;
      next = { submit: (io, done) => f.submit(io, done, below), close: () => below.close() };
    }
    this.driver = next;
  }

  alloc(): LayerIo {
    return (
      this.pool.pop() ?? {
        type: IoType.READ, offsetBlocks: 0, numBlocks: 0, iovs: [], driverCtx: undefined,
        cb: null, arg: undefined, start: 0, bytes: 0, parent: null, pending: 0, firstError: 0,
      }
    );
  }

  fail(cb: IoCallback, arg: unknown, status: number): void {
    this.deferred.push({ cb, arg, status });
    if (!this.deferredScheduled) {
      this.deferredScheduled = true;
      setImmediate(() => this.flushDeferred());
    }
  }

  private flushDeferred(): void {
    this.deferredScheduled = false;
    const list = this.deferred;
    this.deferred = [];
    for (const d of list) d.cb(d.status, d.arg);
  }

  private complete(io: LayerIo, status: number): void {
    const parent = io.parent;
    if (parent !== null) {
      if (status !== 0 && parent.firstError === 0) parent.firstError = status;
      this.release(io);
      if (--parent.pending === 0) this.complete(parent, parent.firstError);
      return;
    }
    this.stat.record(io.type, io.bytes, (performance.now() - io.start) * 1e6, status);
    const cb = io.cb!;
    const arg = io.arg;
    this.release(io);
    this.inflight--;
    if (this.inflight === 0 && this.drainWaiters.length > 0) this.wakeDrain();
    cb(status, arg);
  }

  private release(io: LayerIo): void {
    io.cb = null;
    io.arg = undefined;
    io.iovs = EMPTY;
    io.parent = null;
    io.driverCtx = undefined;
    this.pool.push(io);
  }

  /** Resolves when no I/O of this bdev is in flight. */
  drained(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private wakeDrain(): void {
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
  }
}

const EMPTY: Uint8Array[] = [];

/**
 * A descriptor's channel to a bdev: the hot-path entry. Checks bounds, buffer sizes, the
 * descriptor's write permission and the bdev's supported types; splits on the optimal I/O
 * boundary; records statistics. Never throws: refused I/Os complete with a negative errno, always
 * asynchronously (so a caller resubmitting from its callback cannot recurse).
 */
export class IoChannel {
  constructor(
    private readonly shared: SharedChannel,
    private readonly writable: boolean,
  ) {}

  get bdev(): Bdev {
    return this.shared.bdev;
  }

  /** I/Os submitted through any descriptor of this bdev and not completed yet. */
  get inflight(): number {
    return this.shared.inflight;
  }

  read(iovs: Uint8Array[], offsetBlocks: number, numBlocks: number, cb: IoCallback, arg?: unknown): void {
    this.submit(IoType.READ, offsetBlocks, numBlocks, iovs, cb, arg);
  }

  write(iovs: Uint8Array[], offsetBlocks: number, numBlocks: number, cb: IoCallback, arg?: unknown): void {
    this.submit(IoType.WRITE, offsetBlocks, numBlocks, iovs, cb, arg);
  }

  flush(offsetBlocks: number, numBlocks: number, cb: IoCallback, arg?: unknown): void {
    this.submit(IoType.FLUSH, offsetBlocks, numBlocks, EMPTY, cb, arg);
  }

  unmap(offsetBlocks: number, numBlocks: number, cb: IoCallback, arg?: unknown): void {
    this.submit(IoType.UNMAP, offsetBlocks, numBlocks, EMPTY, cb, arg);
  }

  writeZeroes(offsetBlocks: number, numBlocks: number, cb: IoCallback, arg?: unknown): void {
    this.submit(IoType.WRITE_ZEROES, offsetBlocks, numBlocks, EMPTY, cb, arg);
  }

  reset(cb: IoCallback, arg?: unknown): void {
    this.submit(IoType.RESET, 0, 0, EMPTY, cb, arg);
  }

  /**
   * Generic submission. `offsetBlocks`/`numBlocks` in blocks; `iovs` for read/write only, their
   * lengths summing to numBlocks × blockSize. `cb(status, arg)` runs exactly once.
   */
  submit(type: IoType, offsetBlocks: number, numBlocks: number, iovs: Uint8Array[], cb: IoCallback, arg?: unknown): void {
    const sh = this.shared;
    const bdev = sh.bdev;
    const status = this.check(type, offsetBlocks, numBlocks, iovs);
    if (status !== 0) {
      sh.fail(cb, arg, status);
      return;
    }
    const io = sh.alloc();
    io.type = type;
    io.offsetBlocks = offsetBlocks;
    io.numBlocks = numBlocks;
    io.iovs = iovs;
    io.cb = cb;
    io.arg = arg;
    io.bytes = numBlocks * bdev.blockSize;
    io.start = performance.now();
    sh.inflight++;
    const boundary = bdev.optimalIoBoundary;
    if (boundary > 0 && bdev.splitOnOptimalIoBoundary && numBlocks > 0 &&
        Math.floor(offsetBlocks / boundary) !== Math.floor((offsetBlocks + numBlocks - 1) / boundary)) {
      this.split(io, boundary);
      return;
    }
    sh.driver.submit(io, sh.onDriverDone);
  }

  private check(type: IoType, offsetBlocks: number, numBlocks: number, iovs: Uint8Array[]): number {
    const sh = this.shared;
    const bdev = sh.bdev;
    if (sh.removed) return ENODEV;
    if (!bdev.ioTypeSupported(type)) return ENOTSUP;
    if (!this.writable && type !== IoType.READ && type !== IoType.FLUSH && type !== IoType.RESET) return EBADF;
    if (!Number.isSafeInteger(offsetBlocks) || !Number.isSafeInteger(numBlocks) || offsetBlocks < 0 || numBlocks < 0 ||
        offsetBlocks + numBlocks > bdev.numBlocks) return EINVAL;
    if (type === IoType.READ || type === IoType.WRITE) {
      if (numBlocks === 0) return EINVAL;
      let total = 0;
      for (let i = 0; i < iovs.length; i++) total += iovs[i].length;
      if (total !== numBlocks * bdev.blockSize) return EINVAL;
    } else if ((type === IoType.UNMAP || type === IoType.WRITE_ZEROES) && numBlocks === 0) {
      return EINVAL;
    }
    return 0;
  }

  /** Split path: children on each boundary, parent completes with the first child error. Not the hot path. */
  private split(parent: LayerIo, boundary: number): void {
    const sh = this.shared;
    const bs = sh.bdev.blockSize;
    const children: LayerIo[] = [];
    let off = parent.offsetBlocks;
    const end = off + parent.numBlocks;
    let byteOff = 0;
    while (off < end) {
      const n = Math.min(end, (Math.floor(off / boundary) + 1) * boundary) - off;
      const child = sh.alloc();
      child.type = parent.type;
      child.offsetBlocks = off;
      child.numBlocks = n;
      child.iovs = parent.iovs.length > 0 ? sliceIovs(parent.iovs, byteOff, n * bs) : EMPTY;
      child.parent = parent;
      children.push(child);
      off += n;
      byteOff += n * bs;
    }
    parent.pending = children.length;
    parent.firstError = 0;
    for (const c of children) sh.driver.submit(c, sh.onDriverDone);
  }
}

/** Views covering bytes [start, start+len) of a buffer list, without copying. */
export function sliceIovs(iovs: Uint8Array[], start: number, len: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  for (const iov of iovs) {
    const iovEnd = pos + iov.length;
    if (iovEnd > start && pos < start + len) {
      const from = Math.max(start, pos) - pos;
      const to = Math.min(start + len, iovEnd) - pos;
      out.push(iov.subarray(from, to));
    }
    pos = iovEnd;
    if (pos >= start + len) break;
  }
  return out;
}
