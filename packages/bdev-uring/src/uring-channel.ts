import { allocAligned, type BdevChannel, type BdevIo, type DriverDone, Errno, IoType, type IoTuning, ioTuning, isAligned } from '@blockwork/core';
import { DESC_STRIDE, RingOp, type UringRing, type UringRingOptions, uringNative } from './native';

/** What a channel needs from its bdev (UringBdev implements it). */
export interface UringChannelTarget {
  readonly name: string;
  readonly fd: number;
  readonly blockSize: number;
  readonly requiredAlignment: number;
  /** Set once ZERO_RANGE came back EOPNOTSUPP: write_zeroes then punches holes instead. */
  zeroRangeUnsupported: boolean;
  onZeroRangeUnsupported(): void;
}

/** SQ entries per ring; also the most I/Os one channel keeps in flight. */
export const RING_ENTRIES = 256;

/**
 * Ring options, read per channel (docs/bdev-uring.md "Completion polling"): the shared I/O tuning
 * (ioTuning) and BLOCKWORK_URING_PLAIN=1 (no DEFER_TASKRUN).
 */
export function ringOptions(t: IoTuning = ioTuning()): UringRingOptions {
  return { plain: process.env.BLOCKWORK_URING_PLAIN === '1', spinUs: t.spinUs, spinMaxInflight: t.spinQd };
}

const EIO = -Errno.EIO;
const ENODEV = -Errno.ENODEV;
const ENOTSUP = -Errno.ENOTSUP;
const EOPNOTSUPP = -95;

/**
 * A uring bdev's channel: one io_uring. `submit` only queues; one microtask per event-loop turn
 * hands the whole queue to the ring in one native call (one io_uring_enter). I/Os beyond the free
 * slots wait in the queue until completions free room. Short reads and writes complete with -EIO
 * (they only happen when the file shrank under us); they are not resubmitted.
 */
export class UringChannel implements BdevChannel {
  private readonly ring: UringRing;
  private readonly ids: Uint32Array;
  private readonly results: Int32Array;
  private readonly slotIo: Array<BdevIo | null>;
  private readonly slotDone: Array<DriverDone | null>;
  private readonly slotBounce: Array<Buffer | null>;
  private readonly slotOp: Uint8Array;
  private readonly slotBytes: Float64Array;
  private readonly freeSlots: Int32Array;
  private nFree: number;
  private readonly desc: Float64Array;
  private readonly bufs: Uint8Array[] = [];
  private qIo: BdevIo[] = [];
  private qDone: DriverDone[] = [];
  private qHead = 0;
  private flushScheduled = false;
  private readonly flushFn = (): void => this.flush();
  /** Most SQEs per io_uring_enter (ioTuning().submitBatch). */
  private readonly submitBatch: number;
  /** io_uring_enter submissions made, and completion batches delivered (how well submissions are batched). */
  submitCalls = 0;
  completionBatches = 0;
  private closed = false;
  private closeWaiter: (() => void) | null = null;

  constructor(private readonly target: UringChannelTarget) {
    const n = uringNative();
    this.ids = new Uint32Array(RING_ENTRIES * 2);
    this.results = new Int32Array(RING_ENTRIES * 2);
    const tuning = ioTuning();
    this.submitBatch = tuning.submitBatch;
    this.ring = new n.UringRing(target.fd, RING_ENTRIES, this.ids, this.results, (k) => this.onComplete(k), ringOptions(tuning));
    const slots = this.ring.sqEntries;
    this.slotIo = new Array<BdevIo | null>(slots).fill(null);
    this.slotDone = new Array<DriverDone | null>(slots).fill(null);
    this.slotBounce = new Array<Buffer | null>(slots).fill(null);
    this.slotOp = new Uint8Array(slots);
    this.slotBytes = new Float64Array(slots);
    this.freeSlots = new Int32Array(slots);
    for (let i = 0; i < slots; i++) this.freeSlots[i] = slots - 1 - i;
    this.nFree = slots;
    this.desc = new Float64Array(slots * DESC_STRIDE);
  }

  /** The ring's setup mode ('defer' where the kernel has DEFER_TASKRUN). */
  get mode(): 'defer' | 'plain' {
    return this.ring.mode;
  }

  /** Completion polling counters (docs/bdev-uring.md "Completion polling"). */
  get spinStats(): { hits: number; misses: number; contended: number } {
    return this.ring.spinStats;
  }

  /** I/Os handed to the kernel and not completed, plus those still queued. */
  get outstanding(): number {
    return this.ring.inflight + this.qIo.length - this.qHead;
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

  /** Hands everything queued that fits in free slots to the ring: one native call and one io_uring_enter per submitBatch. */
  private flush(): void {
    this.flushScheduled = false;
    while (this.qHead < this.qIo.length && this.nFree > 0 && this.submitChunk()) { /* next chunk */ }
    if (this.qHead === this.qIo.length) {
      this.qIo.length = 0;
      this.qDone.length = 0;
      this.qHead = 0;
    }
  }

  /** Submits up to submitBatch queued I/Os; false when the SQ was full (the rest waits for completions). */
  private submitChunk(): boolean {
    const start = this.qHead;
    let k = 0;
    this.bufs.length = 0;
    while (this.qHead < this.qIo.length && this.nFree > 0 && k < this.submitBatch) {
      const slot = this.freeSlots[--this.nFree];
      this.encode(k++, slot, this.qIo[this.qHead], this.qDone[this.qHead]);
      this.qHead++;
    }
    this.submitCalls++;
    const taken = this.ring.submit(k, this.desc, this.bufs);
    if (taken < 0) {
      for (let i = 0; i < k; i++) this.finish(this.desc[i * DESC_STRIDE + 1], taken);
    } else if (taken < k) {
      // SQ full (only after the kernel returned EAGAIN/EBUSY).
      for (let i = taken; i < k; i++) this.release(this.desc[i * DESC_STRIDE + 1]);
      this.qHead = start + taken;
      return false;
    }
    return true;
  }

  private encode(k: number, slot: number, io: BdevIo, done: DriverDone): void {
    const t = this.target;
    const d = this.desc;
    const o = k * DESC_STRIDE;
    const bytes = io.numBlocks * t.blockSize;
    this.slotIo[slot] = io;
    this.slotDone[slot] = done;
    this.slotBytes[slot] = bytes;
    d[o + 1] = slot;
    d[o + 2] = io.offsetBlocks * t.blockSize;
    d[o + 3] = bytes;
    d[o + 4] = this.bufs.length;
    d[o + 5] = 0;
    let op: number;
    switch (io.type) {
      case IoType.READ:
      case IoType.WRITE:
        op = io.type === IoType.READ ? RingOp.READ : RingOp.WRITE;
        d[o + 5] = this.addBuffers(slot, io, bytes);
        break;
      case IoType.FLUSH:
        op = RingOp.FSYNC;
        break;
      case IoType.UNMAP:
        op = RingOp.PUNCH;
        break;
      default:
        op = t.zeroRangeUnsupported ? RingOp.PUNCH : RingOp.ZERO;
    }
    d[o] = op;
    this.slotOp[slot] = op;
  }

  /** Appends the I/O's buffers to the batch, or one aligned bounce copy when they are misaligned. */
  private addBuffers(slot: number, io: BdevIo, bytes: number): number {
    const align = this.target.requiredAlignment;
    if (isAligned(io.iovs, align)) {
      for (let i = 0; i < io.iovs.length; i++) this.bufs.push(io.iovs[i]);
      return io.iovs.length;
    }
    const bounce = allocAligned(bytes, align);
    if (io.type === IoType.WRITE) {
      let pos = 0;
      for (const iov of io.iovs) {
        bounce.set(iov, pos);
        pos += iov.length;
      }
    }
    this.slotBounce[slot] = bounce;
    this.bufs.push(bounce);
    return 1;
  }

  /** One call per completion batch from the addon: ids/results hold n entries. */
  private onComplete(n: number): void {
    this.completionBatches++;
    for (let i = 0; i < n; i++) {
      const slot = this.ids[i];
      const res = this.results[i];
      const op = this.slotOp[slot];
      if (op === RingOp.ZERO && res === EOPNOTSUPP) {
        this.retryAsPunch(slot);
        continue;
      }
      let status = res < 0 ? res : 0;
      if ((op === RingOp.READ || op === RingOp.WRITE) && res >= 0 && res !== this.slotBytes[slot]) status = EIO;
      if (status === 0 && op === RingOp.READ && this.slotBounce[slot] !== null) this.copyOut(slot);
      this.finish(slot, status);
    }
    if (this.qHead < this.qIo.length) this.flush();
    if (this.closeWaiter !== null && this.outstanding === 0) this.closeWaiter();
  }

  private copyOut(slot: number): void {
    const bounce = this.slotBounce[slot]!;
    let pos = 0;
    for (const iov of this.slotIo[slot]!.iovs) {
      iov.set(bounce.subarray(pos, pos + iov.length));
      pos += iov.length;
    }
  }

  /** ZERO_RANGE is not supported by this filesystem: requeue as PUNCH_HOLE (also reads back zeros). */
  private retryAsPunch(slot: number): void {
    if (!this.target.zeroRangeUnsupported) this.target.onZeroRangeUnsupported();
    this.target.zeroRangeUnsupported = true;
    const io = this.slotIo[slot]!;
    const done = this.slotDone[slot]!;
    this.release(slot);
    this.qIo.push(io);
    this.qDone.push(done);
  }

  private finish(slot: number, status: number): void {
    const io = this.slotIo[slot]!;
    const done = this.slotDone[slot]!;
    this.release(slot);
    done(io, status);
  }

  private release(slot: number): void {
    this.slotIo[slot] = null;
    this.slotDone[slot] = null;
    this.slotBounce[slot] = null;
    this.freeSlots[this.nFree++] = slot;
  }

  /** Waits for queued and in-flight I/O to complete, then unmaps the ring and closes its fds. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.outstanding > 0) await new Promise<void>((resolve) => { this.closeWaiter = resolve; });
    this.closeWaiter = null;
    this.ring.close();
  }
}
