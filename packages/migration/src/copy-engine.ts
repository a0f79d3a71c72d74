import { allocAligned, type IoChannel, ioStatusText } from '@blockwork/core';
import type { DirtyBitmap } from './dirty-bitmap';
import type { TokenBucket } from './token-bucket';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Copies dirty granules from source to target, several in flight. For each granule: clear its bit,
 * THEN read the source and write the target; a write landing in between marks it again (see
 * WriteTracker), so the next pass copies it once more. A granule is never copied twice at once.
 * While a copy is in flight its granule sits in a copy slot of the file, so a crash mid-copy
 * leaves it dirty for the next attach.
 */
export class CopyEngine {
  /** Bytes written to the target by this engine since it was created. */
  bytesCopied = 0;
  private readonly free: Array<{ buf: Buffer; slot: number }> = [];
  private readonly copying = new Set<number>();
  private waiters: Array<() => void> = [];
  private error: Error | null = null;

  constructor(
    private readonly bitmap: DirtyBitmap,
    private readonly src: IoChannel,
    private readonly tgt: IoChannel,
    private readonly sourceBytes: number,
    private readonly concurrency: number,
    private readonly bucket: TokenBucket | null,
  ) {
    for (let i = 0; i < Math.min(concurrency, 64); i++) this.free.push({ buf: allocAligned(bitmap.granuleBytes, 4096), slot: i });
  }

  /**
   * One pass over the bitmap from granule 0: copies every granule dirty when the scan reaches it.
   * Resolves with the number of granules copied once all of them are on the target; rejects on the
   * first failed I/O (its granule is marked dirty again).
   */
  async pass(limited: boolean, stopped: () => boolean): Promise<number> {
    let g = 0;
    let n = 0;
    while (!stopped() && this.error === null) {
      g = this.bitmap.findNextDirty(g);
      if (g < 0) break;
      if (this.copying.has(g)) {
        g++;
        continue;
      }
      while (this.free.length === 0) await new Promise<void>((r) => this.waiters.push(r));
      const len = Math.min(this.bitmap.granuleBytes, this.sourceBytes - g * this.bitmap.granuleBytes);
      if (limited && this.bucket) {
        for (let wait = this.bucket.take(len); wait > 0 && !stopped(); wait = this.bucket.take(len)) await sleep(Math.min(wait, 100));
        if (stopped()) break;
      }
      if (this.bitmap.clearForCopy(g, this.free[this.free.length - 1].slot)) {
        this.copy(g, len);
        n++;
      }
      g++;
    }
    await this.idle();
    if (this.error !== null) throw this.error;
    return n;
  }

  /** Resolves when no copy is in flight. */
  async idle(): Promise<void> {
    while (this.copying.size > 0) await new Promise<void>((r) => this.waiters.push(r));
  }

  private copy(g: number, len: number): void {
    const res = this.free.pop()!;
    const view = res.buf.subarray(0, len);
    const off = g * this.bitmap.granuleBytes;
    this.copying.add(g);
    const finish = (status: number, what: string) => {
      this.copying.delete(g);
      if (status !== 0) this.bitmap.set(g);
      this.bitmap.copied(res.slot);
      this.free.push(res);
      if (status !== 0) {
        this.error ??= new Error(`${what} of granule ${g} (byte ${off}, ${len} bytes) failed: ${ioStatusText(status)}`);
      } else {
        this.bytesCopied += len;
      }
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    };
    const sbs = this.src.bdev.blockSize;
    const tbs = this.tgt.bdev.blockSize;
    this.src.read([view], off / sbs, len / sbs, (rs) => {
      if (rs !== 0) finish(rs, `read from ${this.src.bdev.name}`);
      else this.tgt.write([view], off / tbs, len / tbs, (ws) => finish(ws, `write to ${this.tgt.bdev.name}`));
    });
  }
}
