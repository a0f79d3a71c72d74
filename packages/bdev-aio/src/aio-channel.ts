import { type BdevChannel, type BdevIo, type DriverDone, Errno, IoType, allocAligned, ioTuning, isAligned } from '@blockwork/core';
import { aioError } from './errors';
import { BlockingQueue } from './blocking-queue';
import { type AioContextNative, AioOp, aioNative } from './native';

/** What a channel needs from its bdev. `fd` stays open until every channel is closed. */
export interface AioTarget {
  readonly name: string;
  readonly fd: number;
  /** Bytes per block. */
  readonly blockSize: number;
  /** Buffer address/length alignment in bytes that O_DIRECT needs (1 when buffered). */
  readonly requiredAlignment: number;
}

/** Kernel AIO queue depth of one channel. More queued I/Os wait in JS for a free slot. */
export const AIO_DEPTH = 256;

const EIO = -Errno.EIO;
const EAGAIN = -Errno.EAGAIN;
const EINVAL = -Errno.EINVAL;
const ENODEV = -Errno.ENODEV;
const EMPTY: Uint8Array[] = [];

/**
 * A channel to one aio bdev: one kernel AIO context (depth 256) and one eventfd. I/Os submitted in
 * one event-loop turn go to the kernel in one io_submit; completions come back in batches.
 * unmap, write_zeroes (fallocate) and, where the kernel refuses IOCB_CMD_FDSYNC, flush run on the
 * libuv thread pool in batches. Misaligned buffers are bounced through an aligned copy.
 */
export class AioChannel implements BdevChannel {
  private readonly ctx: AioContextNative;
  private readonly sub = {
    ops: new Uint8Array(AIO_DEPTH), fds: new Int32Array(AIO_DEPTH),
    offsets: new Float64Array(AIO_DEPTH), slots: new Uint32Array(AIO_DEPTH),
  };
  private readonly comp = { slots: new Uint32Array(AIO_DEPTH), results: new Float64Array(AIO_DEPTH) };
  private readonly iovLists: Uint8Array[][] = new Array<Uint8Array[]>(AIO_DEPTH).fill(EMPTY);
  private readonly freeSlots = new Uint32Array(AIO_DEPTH).map((_, i) => AIO_DEPTH - 1 - i);
  private freeTop = AIO_DEPTH;
  private readonly slotIo: Array<BdevIo | null> = new Array<BdevIo | null>(AIO_DEPTH).fill(null);
  private readonly slotDone: Array<DriverDone | null> = new Array<DriverDone | null>(AIO_DEPTH).fill(null);
  private readonly slotBytes = new Float64Array(AIO_DEPTH);
  /** I/Os waiting for io_submit (FIFO with a moving head, so no per-I/O shift). */
  private queue: BdevIo[] = [];
  private queueDone: DriverDone[] = [];
  private qHead = 0;
  private flushScheduled = false;
  /** io_submit said EAGAIN: wait for a completion before trying again. */
  private stalled = false;
  private fdsyncInKernel = true;
  private readonly blocking = new BlockingQueue(this);
  private resets: Array<{ io: BdevIo; done: DriverDone }> = [];
  private idleWaiters: Array<() => void> = [];
  private destroyed = false;
  private closing: Promise<void> | null = null;
  /** Most iocbs per io_submit (ioTuning().submitBatch). */
  private readonly submitBatch: number;
  /** io_submit calls made, and completion batches delivered (how well submissions are batched). */
  submitCalls = 0;
  completionBatches = 0;
  private readonly flushBound = (): void => this.flushQueue();
  private readonly retryBound = (): void => {
    this.stalled = false;
    this.flushQueue();
  };

  constructor(readonly target: AioTarget) {
    const N = aioNative();
    try {
      this.ctx = new N.AioContext(AIO_DEPTH, this.sub, this.comp, (n) => this.onComplete(n));
      const tuning = ioTuning();
      this.ctx.setSpin(tuning.spinUs, tuning.spinQd);
      this.submitBatch = tuning.submitBatch;
    } catch (e) {
      const err = e as { errno?: number; syscall?: string };
      throw aioError('AIO_SETUP_FAILED', `bdev ${target.name}: ${err.syscall ?? 'io_setup'} failed for a new I/O channel ` +
        `(errno ${err.errno}); check /proc/sys/fs/aio-max-nr`, { errno: err.errno, cause: e });
    }
  }

  /** Whether completions are reaped from the user-space ring (false: io_getevents fallback). */
  get usesRing(): boolean {
    return this.ctx.usesRing;
  }

  /** Completion polling counters (docs/bdev-aio.md "Completion polling"). */
  get spinStats(): { hits: number; misses: number; contended: number } {
    return this.ctx.spinStats;
  }

  /** I/Os accepted and not completed yet (queued, in the kernel or on the thread pool). */
  get busy(): number {
    return AIO_DEPTH - this.freeTop + (this.queue.length - this.qHead) + this.blocking.busy;
  }

  submit(io: BdevIo, done: DriverDone): void {
    switch (io.type) {
      case IoType.READ:
      case IoType.WRITE:
        break;
      case IoType.FLUSH:
        if (!this.fdsyncInKernel) return this.blocking.push(io, done);
        break;
      case IoType.UNMAP:
      case IoType.WRITE_ZEROES:
        return this.blocking.push(io, done);
      default:
        // Reset: there is nothing to abort in kernel AIO; it completes once everything before it has.
        this.resets.push({ io, done });
        return this.schedule();
    }
    this.queue.push(io);
    this.queueDone.push(done);
    this.schedule();
  }

  /** Waits for every accepted I/O, then destroys the AIO context and its eventfd. */
  close(): Promise<void> {
    if (this.closing === null) {
      this.closing = new Promise<void>((resolve) => {
        this.idleWaiters.push(resolve);
        this.checkIdle();
      }).then(() => {
        this.destroyed = true;
        this.ctx.destroy();
      });
    }
    return this.closing;
  }

  schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(this.flushBound);
  }

  private flushQueue(): void {
    this.flushScheduled = false;
    if (this.destroyed) return this.failQueued();
    while (this.qHead < this.queue.length && this.freeTop > 0 && !this.stalled) {
      let n = 0;
      while (this.qHead < this.queue.length && this.freeTop > 0) {
        this.prepare(n++, this.queue[this.qHead], this.queueDone[this.qHead]);
        this.qHead++;
      }
      this.issue(n);
    }
    if (this.qHead === this.queue.length) {
      this.queue.length = 0;
      this.queueDone.length = 0;
      this.qHead = 0;
    }
    this.blocking.start();
    this.checkIdle();
  }

  private prepare(i: number, io: BdevIo, done: DriverDone): void {
    const slot = this.freeSlots[--this.freeTop];
    const t = this.target;
    this.slotIo[slot] = io;
    this.slotDone[slot] = done;
    this.sub.slots[i] = slot;
    this.sub.fds[i] = t.fd;
    if (io.type === IoType.FLUSH) {
      this.sub.ops[i] = AioOp.FDSYNC;
      this.sub.offsets[i] = 0;
      this.slotBytes[slot] = 0;
      this.iovLists[i] = EMPTY;
      return;
    }
    this.sub.ops[i] = io.type === IoType.READ ? AioOp.READ : AioOp.WRITE;
    this.sub.offsets[i] = io.offsetBlocks * t.blockSize;
    this.slotBytes[slot] = io.numBlocks * t.blockSize;
    this.iovLists[i] = this.buffersFor(io);
  }

  /** The caller's buffers, or (misaligned for O_DIRECT) a one-element list with an aligned bounce copy. */
  private buffersFor(io: BdevIo): Uint8Array[] {
    if (io.driverCtx !== undefined) return io.driverCtx as Uint8Array[]; // requeued after EAGAIN
    const align = this.target.requiredAlignment;
    if (align <= 1 || isAligned(io.iovs, align)) return io.iovs;
    const bounce = allocAligned(io.numBlocks * this.target.blockSize, Math.max(align, 512));
    if (io.type === IoType.WRITE) {
      let pos = 0;
      for (const iov of io.iovs) {
        bounce.set(iov, pos);
        pos += iov.length;
      }
    }
    const list = [bounce];
    io.driverCtx = list;
    return list;
  }

  /** Submits batch entries [0, n) with as few io_submit calls as the kernel allows. */
  private issue(n: number): void {
    let start = 0;
    while (start < n) {
      this.submitCalls++;
      const r = this.ctx.submit(start, Math.min(n, start + this.submitBatch), this.iovLists);
      if (r > 0) {
        start += r;
        continue;
      }
      if (r === EAGAIN || r === 0) return this.requeue(start, n);
      // The kernel refused entry `start` outright; the rest may still go.
      const slot = this.sub.slots[start];
      if (r === EINVAL && this.sub.ops[start] === AioOp.FDSYNC) {
        // This file's kernel driver has no aio fsync: flush on the thread pool from now on.
        this.fdsyncInKernel = false;
        const io = this.slotIo[slot]!;
        const done = this.slotDone[slot]!;
        this.releaseSlot(slot);
        this.blocking.push(io, done);
      } else {
        this.completeSlot(slot, r);
      }
      start++;
    }
  }

  /** Puts entries [start, n) back at the head of the queue, in order, and frees their slots. */
  private requeue(start: number, n: number): void {
    for (let i = n - 1; i >= start; i--) {
      const slot = this.sub.slots[i];
      this.qHead--;
      this.queue[this.qHead] = this.slotIo[slot]!;
      this.queueDone[this.qHead] = this.slotDone[slot]!;
      this.releaseSlot(slot);
    }
    this.stalled = true;
    // With nothing in flight no completion will come to retry; poll again shortly.
    if (this.ctx.inflight === 0) setTimeout(this.retryBound, 1);
  }

  private releaseSlot(slot: number): void {
    this.slotIo[slot] = null;
    this.slotDone[slot] = null;
    this.freeSlots[this.freeTop++] = slot;
  }

  private completeSlot(slot: number, res: number): void {
    const io = this.slotIo[slot]!;
    const done = this.slotDone[slot]!;
    const expected = this.slotBytes[slot];
    this.releaseSlot(slot);
    // A short transfer (the file shrank under us) is an I/O error, not a partial success.
    const status = res < 0 ? res : res === expected ? 0 : EIO;
    if (io.driverCtx !== undefined) {
      if (status === 0 && io.type === IoType.READ) scatter((io.driverCtx as Uint8Array[])[0], io.iovs);
      io.driverCtx = undefined;
    }
    done(io, status);
  }

  /** Called by the addon once per batch of completions, within an async context. */
  private onComplete(n: number): void {
    const { slots, results } = this.comp;
    this.completionBatches++;
    for (let i = 0; i < n; i++) this.completeSlot(slots[i], results[i]);
    this.stalled = false;
    if (this.qHead < this.queue.length || this.resets.length > 0) this.schedule();
    else this.checkIdle();
  }

  /** Completes resets and wakes close() once nothing is queued or in flight. */
  checkIdle(): void {
    if (this.busy !== 0) return;
    if (this.resets.length > 0) {
      const r = this.resets;
      this.resets = [];
      for (const { io, done } of r) done(io, 0);
    }
    if (this.busy === 0 && this.idleWaiters.length > 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  private failQueued(): void {
    const q = this.queue.slice(this.qHead);
    const d = this.queueDone.slice(this.qHead);
    this.queue = [];
    this.queueDone = [];
    this.qHead = 0;
    for (let i = 0; i < q.length; i++) d[i](q[i], ENODEV);
  }
}

/** Copies a bounce buffer back into the caller's buffers after a read. */
function scatter(src: Uint8Array, iovs: Uint8Array[]): void {
  let pos = 0;
  for (const iov of iovs) {
    iov.set(src.subarray(pos, pos + iov.length));
    pos += iov.length;
  }
}
