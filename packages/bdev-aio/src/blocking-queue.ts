import { type BdevIo, type DriverDone, IoType } from '@blockwork/core';
import { BlockingOp, aioNative } from './native';

/** Most unmap/write_zeroes/fdatasync operations handed to one thread-pool job. */
export const BLOCKING_BATCH = 64;

/** The channel side a BlockingQueue reports to. */
export interface BlockingOwner {
  readonly target: { readonly fd: number; readonly blockSize: number };
  /** Schedules the channel's end-of-turn flush, which calls `start()`. */
  schedule(): void;
  /** Re-checks whether the channel went idle (resets, close). */
  checkIdle(): void;
}

/**
 * unmap, write_zeroes and fallback flushes: one thread-pool job at a time per channel, each
 * carrying up to BLOCKING_BATCH operations, so the event loop never waits on fallocate/fdatasync.
 */
export class BlockingQueue {
  private ios: BdevIo[] = [];
  private dones: DriverDone[] = [];
  private head = 0;
  private running: BdevIo[] = [];
  private runningDone: DriverDone[] = [];
  private readonly ops = new Uint8Array(BLOCKING_BATCH);
  private readonly fds = new Int32Array(BLOCKING_BATCH);
  private readonly offsets = new Float64Array(BLOCKING_BATCH);
  private readonly lengths = new Float64Array(BLOCKING_BATCH);
  private readonly results = new Int32Array(BLOCKING_BATCH);
  private readonly onDoneBound = (): void => this.onDone();

  constructor(private readonly ch: BlockingOwner) {}

  get busy(): number {
    return this.ios.length - this.head + this.running.length;
  }

  push(io: BdevIo, done: DriverDone): void {
    this.ios.push(io);
    this.dones.push(done);
    this.ch.schedule();
  }

  start(): void {
    if (this.running.length > 0 || this.head === this.ios.length) return;
    const n = Math.min(BLOCKING_BATCH, this.ios.length - this.head);
    const bs = this.ch.target.blockSize;
    for (let i = 0; i < n; i++) {
      const io = this.ios[this.head + i];
      this.running.push(io);
      this.runningDone.push(this.dones[this.head + i]);
      this.ops[i] = io.type === IoType.UNMAP ? BlockingOp.PUNCH_HOLE
        : io.type === IoType.WRITE_ZEROES ? BlockingOp.ZERO_RANGE : BlockingOp.FDATASYNC;
      this.fds[i] = this.ch.target.fd;
      this.offsets[i] = io.offsetBlocks * bs;
      this.lengths[i] = io.numBlocks * bs;
    }
    this.head += n;
    if (this.head === this.ios.length) {
      this.ios = [];
      this.dones = [];
      this.head = 0;
    }
    aioNative().runBlocking(n, this.ops, this.fds, this.offsets, this.lengths, this.results, this.onDoneBound);
  }

  private onDone(): void {
    const ios = this.running;
    const dones = this.runningDone;
    this.running = [];
    this.runningDone = [];
    for (let i = 0; i < ios.length; i++) dones[i](ios[i], this.results[i]);
    this.start();
    this.ch.checkIdle();
  }
}
