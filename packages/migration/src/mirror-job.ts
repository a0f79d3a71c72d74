import { existsSync, rmSync } from 'node:fs';
import { type BdevDesc, type BdevIo, type BdevLayer, type IoChannel, IoType, ioStatusText, type Logger } from '@blockwork/core';
import { DirtyBitmap } from './dirty-bitmap';
import { migrationError } from './errors';
import { ProgressMeter } from './progress-meter';
import { TokenBucket } from './token-bucket';
import { WriteTracker } from './write-tracker';
import { CopyEngine } from './copy-engine';

/** Phases reported by migration_get_status. */
export type MigrationPhase = 'bulk' | 'dirty' | 'converged' | 'completing' | 'completed' | 'failed' | 'cancelled';

/** What a job is started with. Sizes in bytes. */
export interface MirrorJobOptions {
  name: string;
  sourceBdev: string;
  targetBdev: string;
  /** Granule size in bytes; 0 = the resumed bitmap's, or 64 KiB for a new one. */
  granuleBytes: number;
  /** Copy rate limit in bytes per second (0 = none). The final pass is never limited. */
  rateLimit: number;
  bitmapPath: string;
  /** Granule copies in flight (default 8). */
  concurrency?: number;
}

/** migration_get_status's entry for one job. */
export interface MigrationStatus {
  name: string;
  source_bdev: string;
  target_bdev: string;
  phase: MigrationPhase;
  bytes_copied: number;
  dirty_granules: number;
  total_granules: number;
  granularity_kib: number;
  rate_mib_per_s: number;
  /** Seconds until the dirty set is copied at the current rate; null while the rate is unknown. */
  eta_s: number | null;
  bitmap_path: string;
  resumed: boolean;
  error?: string;
}

export const DEFAULT_GRANULE_BYTES = 64 * 1024;

/**
 * A mirror from a source bdev to a target bdev, driven by the shared dirty bitmap: bulk pass (the
 * new bitmap is all dirty), dirty passes until converged, then a final pass with writes held.
 */
export class MirrorJob {
  phase: MigrationPhase;
  error: string | undefined;
  readonly resumed: boolean;
  private readonly bitmap: DirtyBitmap;
  private readonly tracker: WriteTracker;
  private readonly engine: CopyEngine;
  private readonly meter: ProgressMeter;
  private readonly src: BdevDesc;
  private readonly tgt: BdevDesc;
  private readonly tgtCh: IoChannel;
  private removeFilter: (() => void) | null;
  private loop: Promise<void> = Promise.resolve();
  private stopped = false;
  private shuttingDown = false;
  private waker: (() => void) | null = null;
  private cleanWaiters: Array<() => void> = [];
  private readonly threshold: number;

  constructor(
    private readonly layer: BdevLayer,
    readonly opts: MirrorJobOptions,
    private readonly log: Logger,
  ) {
    const source = layer.require(opts.sourceBdev);
    const target = layer.require(opts.targetBdev);
    if (source === target) throw migrationError('MIGRATION_INVALID_PARAM', `source and target are the same bdev '${source.name}'`);
    const sourceBytes = source.numBlocks * source.blockSize;
    if (target.numBlocks * target.blockSize < sourceBytes) {
      throw migrationError('MIGRATION_TARGET_TOO_SMALL', `target bdev '${target.name}' has ${target.numBlocks * target.blockSize} bytes, source '${source.name}' ${sourceBytes}`);
    }
    if (sourceBytes % target.blockSize !== 0) {
      throw migrationError('MIGRATION_INVALID_PARAM', `source size ${sourceBytes} is not a multiple of target block size ${target.blockSize}`);
    }
    const geometry = { granuleBytes: opts.granuleBytes, sourceBytes, sourceName: source.name, sourceUuid: source.uuid, targetName: target.name, targetUuid: target.uuid };
    this.resumed = existsSync(opts.bitmapPath);
    this.bitmap = this.resumed
      ? DirtyBitmap.attach(opts.bitmapPath, geometry)
      : DirtyBitmap.create(opts.bitmapPath, { ...geometry, granuleBytes: opts.granuleBytes || DEFAULT_GRANULE_BYTES });
    const g = this.bitmap.granuleBytes;
    try {
      this.bitmap.lockExclusive();
      if (g < 4096 || (g & (g - 1)) !== 0 || g % source.blockSize !== 0 || g % target.blockSize !== 0) {
        throw migrationError('MIGRATION_INVALID_PARAM', `granularity ${g} bytes must be a power of two ≥ 4 KiB and a multiple of both block sizes`);
      }
      this.phase = this.initialPhase();
      this.src = layer.open(source.name, false, (ev) => this.onBdevEvent(ev, 'source'));
    } catch (e) {
      this.bitmap.close();
      if (!this.resumed) rmSync(opts.bitmapPath, { force: true });
      throw e;
    }
    let tgt: BdevDesc | null = null;
    try {
      tgt = layer.open(target.name, true, (ev) => this.onBdevEvent(ev, 'target'));
      tgt.claim('migration');
      this.tgt = tgt;
    } catch (e) {
      tgt?.close();
      this.src.close();
      this.bitmap.close();
      if (!this.resumed) rmSync(opts.bitmapPath, { force: true });
      throw e;
    }
    this.tgtCh = this.tgt.getIoChannel();
    this.threshold = Math.max(8, Math.ceil(this.bitmap.granuleCount / 256));
    this.tracker = new WriteTracker(this.bitmap, source.blockSize, () => this.wake(), (io, cb) => this.mirrorWrite(io, cb));
    this.removeFilter = layer.insertFilter(source.name, this.tracker);
    const bucket = opts.rateLimit > 0 ? new TokenBucket(opts.rateLimit, Math.max(g, opts.rateLimit / 10)) : null;
    this.engine = new CopyEngine(this.bitmap, this.src.getIoChannel(), this.tgtCh, sourceBytes, opts.concurrency ?? 8, bucket);
    this.meter = new ProgressMeter(() => this.engine.bytesCopied, () => this.bitmap.sync());
    this.bitmap.setState(this.phase === 'completing' ? 'dirty' : this.phase);
    this.loop = this.run();
  }

  /** A resumed bitmap continues its phase; one whose tracking ended (failed, cancelled) starts over all dirty. */
  private initialPhase(): MigrationPhase {
    if (!this.resumed) return 'bulk';
    const s = this.bitmap.header.state;
    if (s === 'failed' || s === 'cancelled' || s === 'unknown') {
      this.log.warn({ job: this.opts.name, state: s }, 'bitmap from a job whose tracking ended: copying everything again');
      this.bitmap.setRange(0, this.bitmap.granuleCount);
      return 'bulk';
    }
    if (this.bitmap.rebooted) this.log.warn({ job: this.opts.name }, 'bitmap from another boot: copying everything again');
    return s === 'bulk' ? 'bulk' : 'dirty';
  }

  private async run(): Promise<void> {
    try {
      while (!this.stopped) {
        const n = await this.engine.pass(this.phase !== 'completing', () => this.stopped);
        if (this.stopped) break;
        this.advance();
        if (n === 0) await this.idle(this.phase === 'completing' ? 5 : 200);
      }
    } catch (e) {
      this.fail(e as Error);
    }
  }

  private advance(): void {
    const dirty = this.bitmap.dirtyCount();
    if (this.phase === 'bulk') this.setPhase('dirty');
    if (this.phase === 'dirty' && dirty <= this.threshold) this.setPhase('converged');
    else if (this.phase === 'converged' && dirty > 4 * this.threshold) this.setPhase('dirty');
    if (dirty === 0 && this.cleanWaiters.length > 0) {
      const w = this.cleanWaiters;
      this.cleanWaiters = [];
      for (const f of w) f();
    }
  }

  private setPhase(p: MigrationPhase): void {
    this.phase = p;
    this.bitmap.setState(p);
    this.log.info({ job: this.opts.name, phase: p }, 'migration phase');
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.waker = null; resolve(); }, ms);
      this.waker = () => { clearTimeout(t); resolve(); };
    });
  }

  private wake(): void {
    const w = this.waker;
    if (w !== null) {
      this.waker = null;
      w();
    }
  }

  /** Write-through after completion: the write's effect on the target, so both stay equal. */
  private mirrorWrite(io: BdevIo, cb: (status: number) => void): void {
    const srcBs = this.src.bdev.blockSize;
    const tbs = this.tgt.bdev.blockSize;
    const off = (io.offsetBlocks * srcBs) / tbs;
    const n = (io.numBlocks * srcBs) / tbs;
    const done = (s: number) => cb(s);
    if ((io.offsetBlocks * srcBs) % tbs !== 0 || (io.numBlocks * srcBs) % tbs !== 0) cb(0); // not expressible on the target: copied in the background
    else if (io.type === IoType.WRITE) this.tgtCh.write(io.iovs, off, n, done);
    else if (this.tgt.bdev.ioTypeSupported(IoType.WRITE_ZEROES)) this.tgtCh.writeZeroes(off, n, done);
    else cb(0); // marked at completion: the background copy brings the granule over
  }

  /** Final pass: hold writes, drain, copy what is dirty, flush the target, release writes in write-through. */
  async complete(): Promise<void> {
    if (this.phase === 'completed') return;
    if (this.phase === 'failed' || this.phase === 'cancelled' || this.phase === 'completing') {
      throw migrationError('MIGRATION_WRONG_PHASE', `migration '${this.opts.name}' is ${this.phase}${this.error ? `: ${this.error}` : ''}`);
    }
    this.setPhase('completing');
    this.tracker.hold();
    try {
      await this.tracker.drained();
      await new Promise<void>((resolve, reject) => {
        this.cleanWaiters.push(resolve);
        this.failWaiter = reject;
        this.wake();
      });
      await new Promise<void>((resolve, reject) => this.tgtCh.flush(0, 0, (s) => (s === 0 ? resolve() : reject(new Error(`flush of target failed: ${ioStatusText(s)}`)))));
      this.setPhase('completed');
    } catch (e) {
      this.fail(e as Error);
      throw migrationError('MIGRATION_FAILED', `migration '${this.opts.name}' failed in its final pass: ${this.error}`, { cause: e });
    } finally {
      this.failWaiter = null;
      if ((this.phase as MigrationPhase) === 'completed') this.tracker.release('through');
    }
  }

  private failWaiter: ((e: Error) => void) | null = null;

  private onBdevEvent(ev: string, which: 'source' | 'target'): void {
    if (ev !== 'remove') return;
    if (this.shuttingDown) {
      this.bitmap.close();
      return;
    }
    this.fail(new Error(`${which} bdev was removed`));
  }

  /** Failure: phase failed, tracking ends (writes released), bitmap kept with state failed. */
  fail(e: Error): void {
    if (this.phase === 'failed' || this.phase === 'cancelled') return;
    this.error = e.message;
    this.log.error({ job: this.opts.name, err: e }, 'migration failed');
    this.phase = 'failed';
    this.failWaiter?.(e);
    this.stopped = true;
    this.wake();
    try {
      this.bitmap.setState('failed');
    } catch {
      // the state is best effort: a bitmap whose tracking ended is recognised by its state or restarted
    }
    void this.teardown(false);
  }

  /** Cancel: stops copying, removes the filter and deletes the bitmap file (tracking ends, so it is no longer valid). */
  async cancel(): Promise<void> {
    if (this.phase !== 'failed' && this.phase !== 'completed') this.phase = 'cancelled';
    this.stopped = true;
    this.wake();
    await this.teardown(true);
  }

  /** Daemon shutdown: stops copying and syncs, but keeps the filter and bitmap until the source goes away, so late writes stay tracked. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    this.stopped = true;
    this.wake();
    this.meter.stop();
    this.tracker.release('track');
    await this.loop;
    await this.engine.idle();
    this.bitmap.sync();
    this.tgt.close();
  }

  private async teardown(deleteBitmap: boolean): Promise<void> {
    this.meter.stop();
    this.tracker.release('track');
    await this.loop;
    await this.engine.idle();
    await this.tracker.drained();
    this.removeFilter?.();
    this.removeFilter = null;
    this.src.close();
    this.tgt.close();
    this.bitmap.sync();
    this.lastDirty = this.bitmap.dirtyCount();
    this.bitmap.close();
    if (deleteBitmap) rmSync(this.opts.bitmapPath, { force: true });
  }

  private lastDirty: number | null = null;

  status(): MigrationStatus {
    const dirty = this.lastDirty ?? this.bitmap.dirtyCount();
    const rate = this.meter.rate();
    const s: MigrationStatus = {
      name: this.opts.name,
      source_bdev: this.opts.sourceBdev,
      target_bdev: this.opts.targetBdev,
      phase: this.phase,
      bytes_copied: this.engine.bytesCopied,
      dirty_granules: dirty,
      total_granules: this.bitmap.granuleCount,
      granularity_kib: this.bitmap.granuleBytes / 1024,
      rate_mib_per_s: Math.round((rate / 2 ** 20) * 10) / 10,
      eta_s: dirty === 0 ? 0 : rate > 0 ? Math.ceil((dirty * this.bitmap.granuleBytes) / rate) : null,
      bitmap_path: this.opts.bitmapPath,
      resumed: this.resumed,
    };
    if (this.error !== undefined) s.error = this.error;
    return s;
  }

  /** Whether the job still tracks writes (its migration_start belongs in a saved config). */
  get active(): boolean {
    return this.phase !== 'failed' && this.phase !== 'cancelled';
  }
}
