import { type BdevChannel, type BdevIo, type DriverDone, Errno, IoType } from '@blockwork/core';
import { DESC_STRIDE, type ImageHandle, RbdOp, type RbdQueue, rbdAddon } from './native';

/** What a channel needs from its bdev (RbdBdev implements it). */
export interface RbdChannelTarget {
  readonly name: string;
  readonly blockSize: number;
  /** The open image; the bdev closes it only after every channel is closed. */
  readonly image: ImageHandle;
  /** False when librbd lacks rbd_aio_write_zeroes (write_zeroes then discards). */
  readonly writeZeroes: boolean;
}

/** Slots per channel: the most I/Os one channel keeps in librbd; the rest wait in the queue. */
export const QUEUE_SLOTS = 512;

const ENODEV = -Errno.ENODEV;
const ENOTSUP = -Errno.ENOTSUP;

/**
 * An rbd bdev's channel: one native queue on the shared image. `submit` only queues; one microtask
 * per event-loop turn hands the whole queue to librbd in one native call. Completions arrive in
 * batches (one JS call per wakeup) with 0 or a negative errno, e.g. -ETIMEDOUT when the cluster did
 * not answer within rados_osd_op_timeout.
 */
export class RbdChannel implements BdevChannel {
  private readonly queue: RbdQueue;
  private readonly ids: Uint32Array;
  private readonly results: Int32Array;
  private readonly slotIo: Array<BdevIo | null>;
  private readonly slotDone: Array<DriverDone | null>;
  private readonly freeSlots: Int32Array;
  private nFree: number;
  private readonly desc: Float64Array;
  private readonly bufs: Uint8Array[] = [];
  private qIo: BdevIo[] = [];
  private qDone: DriverDone[] = [];
  private qHead = 0;
  private flushScheduled = false;
  private readonly flushFn = (): void => this.flush();
  private closed = false;
  private closeWaiter: (() => void) | null = null;

  constructor(private readonly target: RbdChannelTarget) {
    this.ids = new Uint32Array(QUEUE_SLOTS);
    this.results = new Int32Array(QUEUE_SLOTS);
    this.queue = new (rbdAddon().RbdQueue)(target.image, QUEUE_SLOTS, this.ids, this.results, (n) => this.onComplete(n));
    this.slotIo = new Array<BdevIo | null>(QUEUE_SLOTS).fill(null);
    this.slotDone = new Array<DriverDone | null>(QUEUE_SLOTS).fill(null);
    this.freeSlots = new Int32Array(QUEUE_SLOTS);
    for (let i = 0; i < QUEUE_SLOTS; i++) this.freeSlots[i] = QUEUE_SLOTS - 1 - i;
    this.nFree = QUEUE_SLOTS;
    this.desc = new Float64Array(QUEUE_SLOTS * DESC_STRIDE);
  }

  /** I/Os in librbd plus those still queued here. */
  get outstanding(): number {
    return this.queue.inflight + this.qIo.length - this.qHead;
  }

  submit(io: BdevIo, done: DriverDone): void {
    if (this.closed || io.type === IoType.RESET) {
      const status = this.closed ? ENODEV : ENOTSUP;
      queueMicrotask(() => done(io, status));
      return;
    }
    this.qIo.push(io);
    this.qDone.push(done);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushFn);
    }
  }

  /** Hands everything queued that fits in free slots to librbd in one native call. */
  private flush(): void {
    this.flushScheduled = false;
    let k = 0;
    this.bufs.length = 0;
    while (this.qHead < this.qIo.length && this.nFree > 0) {
      const slot = this.freeSlots[--this.nFree];
      this.encode(k++, slot, this.qIo[this.qHead], this.qDone[this.qHead]);
      this.qHead++;
    }
    if (this.qHead === this.qIo.length) {
      this.qIo.length = 0;
      this.qDone.length = 0;
      this.qHead = 0;
    }
    if (k > 0) this.queue.submit(k, this.desc, this.bufs);
  }

  private encode(k: number, slot: number, io: BdevIo, done: DriverDone): void {
    const bs = this.target.blockSize;
    const d = this.desc;
    const o = k * DESC_STRIDE;
    this.slotIo[slot] = io;
    this.slotDone[slot] = done;
    d[o + 1] = slot;
    d[o + 2] = io.offsetBlocks * bs;
    d[o + 3] = io.numBlocks * bs;
    d[o + 4] = this.bufs.length;
    d[o + 5] = 0;
    switch (io.type) {
      case IoType.READ:
      case IoType.WRITE:
        d[o] = io.type === IoType.READ ? RbdOp.READ : RbdOp.WRITE;
        for (let i = 0; i < io.iovs.length; i++) this.bufs.push(io.iovs[i]);
        d[o + 5] = io.iovs.length;
        break;
      case IoType.FLUSH:
        d[o] = RbdOp.FLUSH;
        break;
      case IoType.UNMAP:
        d[o] = RbdOp.DISCARD;
        break;
      default:
        d[o] = this.target.writeZeroes ? RbdOp.WRITE_ZEROES : RbdOp.DISCARD;
    }
  }

  /** One call per completion batch from the addon: ids/results hold n entries. */
  private onComplete(n: number): void {
    for (let i = 0; i < n; i++) {
      const slot = this.ids[i];
      const io = this.slotIo[slot]!;
      const done = this.slotDone[slot]!;
      this.slotIo[slot] = null;
      this.slotDone[slot] = null;
      this.freeSlots[this.nFree++] = slot;
      done(io, this.results[i]);
    }
    if (this.qHead < this.qIo.length && !this.flushScheduled) this.flush();
    if (this.closeWaiter !== null && this.outstanding === 0) this.closeWaiter();
  }

  /** Waits for queued and in-flight I/O to complete (bounded by rados_osd_op_timeout), then releases the queue. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.outstanding > 0) await new Promise<void>((resolve) => { this.closeWaiter = resolve; });
    this.closeWaiter = null;
    this.queue.close();
  }
}
