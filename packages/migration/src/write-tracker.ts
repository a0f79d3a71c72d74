import { type BdevChannel, type BdevFilter, type BdevIo, type DriverDone, IoType } from '@blockwork/core';
import type { DirtyBitmap } from './dirty-bitmap';

/**
 * - track: mark, pass on, mark again at completion.
 * - hold: mark and queue (the final pass runs); `release` passes the queue on.
 * - through: as track, and the write also goes to the target before it completes (after completion).
 */
export type TrackerMode = 'track' | 'hold' | 'through';

/** Writes one source I/O's effect to the target; `cb(status)` once. Provided by the mirror job. */
export type MirrorWrite = (io: BdevIo, cb: (status: number) => void) => void;

interface Held {
  io: BdevIo;
  done: DriverDone;
  next: BdevChannel;
}

function modifies(t: IoType): boolean {
  return t === IoType.WRITE || t === IoType.UNMAP || t === IoType.WRITE_ZEROES;
}

/**
 * The bdev filter on the migration's source: every write, unmap and write_zeroes, from any
 * descriptor, marks its granules in the shared bitmap before it reaches the driver.
 *
 * Ordering rules:
 * - Mark before submit: a crash can never leave a completed but unmarked write.
 * - Mark again at completion: the mirror clears a bit, then reads the source. A write marked before
 *   that clear but still in flight during the read would otherwise be lost; its completion mark comes
 *   after the clear, so the granule is copied once more.
 *
 * Cost: both marks first test the bits with a plain read of the mapping and call the native atomic
 * OR only when one is clear. A set bit is cleared only by this process's mirror (clear, then copy),
 * so "already set" at submit satisfies mark-before-write, and "still set" at completion means the
 * granule's next copy starts after this write completed and reads its data. Under a steady write
 * load most writes hit granules already dirty, and the filter makes no native call at all.
 */
export class WriteTracker implements BdevFilter {
  mode: TrackerMode = 'track';
  /** Writes passed to the driver and not completed yet. */
  inflightWrites = 0;
  private held: Held[] = [];
  private drainWaiters: Array<() => void> = [];
  private lastDone: DriverDone | null = null;
  private lastWrapped: DriverDone | null = null;

  constructor(
    private readonly bitmap: DirtyBitmap,
    private readonly blockSize: number,
    /** Called after each mark (wakes an idle mirror job). Must be cheap and must not throw. */
    private readonly onMark: () => void,
    /** Used in `through` mode. */
    private readonly mirror: MirrorWrite | null = null,
  ) {}

  submit(io: BdevIo, done: DriverDone, next: BdevChannel): void {
    if (!modifies(io.type)) {
      next.submit(io, done);
      return;
    }
    this.mark(io);
    if (this.mode === 'hold') {
      this.held.push({ io, done, next });
      return;
    }
    this.pass(io, done, next);
  }

  /** Writes queued while holding. */
  get heldCount(): number {
    return this.held.length;
  }

  /** Starts holding new writes (those already passed on still complete). */
  hold(): void {
    this.mode = 'hold';
  }

  /** Switches to `mode` and passes every held write on, in arrival order. */
  release(mode: Exclude<TrackerMode, 'hold'>): void {
    this.mode = mode;
    const list = this.held;
    this.held = [];
    for (const h of list) this.pass(h.io, h.done, h.next);
  }

  /** Resolves when no write passed on by this filter is in flight. */
  drained(): Promise<void> {
    if (this.inflightWrites === 0) return Promise.resolve();
    return new Promise((r) => this.drainWaiters.push(r));
  }

  private pass(io: BdevIo, done: DriverDone, next: BdevChannel): void {
    this.inflightWrites++;
    if (this.mode === 'through' && this.mirror !== null) {
      this.passThrough(io, done, next);
      return;
    }
    next.submit(io, this.wrap(done));
  }

  /** The completion wrapper, cached per `done` (the layer hands one per bdev), so no closure per I/O. */
  private wrap(done: DriverDone): DriverDone {
    if (done !== this.lastDone) {
      this.lastDone = done;
      this.lastWrapped = (io, status) => this.finish(io, done, status);
    }
    return this.lastWrapped!;
  }

  private passThrough(io: BdevIo, done: DriverDone, next: BdevChannel): void {
    let pending = 2;
    let first = 0;
    const one = (status: number) => {
      if (status !== 0 && first === 0) first = status;
      if (--pending === 0) this.finish(io, done, first);
    };
    next.submit(io, (_io, status) => one(status));
    this.mirror!(io, one);
  }

  /** Sets the granule bits of `io` unless all are already set (see the class comment). */
  private mark(io: BdevIo): void {
    const off = io.offsetBlocks * this.blockSize;
    const len = io.numBlocks * this.blockSize;
    if (this.bitmap.allMarked(off, len)) return;
    this.bitmap.markBytes(off, len);
    this.onMark();
  }

  private finish(io: BdevIo, done: DriverDone, status: number): void {
    this.mark(io);
    if (--this.inflightWrites === 0 && this.drainWaiters.length > 0) {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const f of w) f();
    }
    done(io, status);
  }
}
