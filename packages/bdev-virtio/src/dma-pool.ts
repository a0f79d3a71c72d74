/**
 * First-fit allocator over the memfd's zero-copy area. Buffers from it are views of the shared
 * memory itself, so the queue puts their offsets straight into descriptors without a bounce copy.
 * Control-plane speed (a sorted free list): allocate once, reuse for many I/Os.
 */
export class DmaPool {
  /** Free ranges [offset, length], sorted by offset and coalesced. */
  private free: Array<[number, number]>;
  private readonly used = new Map<number, number>();

  constructor(private readonly buffer: ArrayBuffer, off: number, size: number, private readonly align = 4096) {
    this.free = size > 0 ? [[off, size]] : [];
  }

  /** A view of `bytes` (rounded up to the alignment) of shared memory, or null when the area is full. */
  alloc(bytes: number): Uint8Array | null {
    const len = Math.ceil(bytes / this.align) * this.align;
    const i = this.free.findIndex(([, l]) => l >= len);
    if (i < 0 || len === 0) return null;
    const [off, l] = this.free[i];
    if (l === len) this.free.splice(i, 1);
    else this.free[i] = [off + len, l - len];
    this.used.set(off, len);
    return new Uint8Array(this.buffer, off, bytes);
  }

  /** Returns a buffer from `alloc`; anything else is ignored (returns false). */
  release(buf: Uint8Array): boolean {
    const len = buf.buffer === this.buffer ? this.used.get(buf.byteOffset) : undefined;
    if (len === undefined) return false;
    this.used.delete(buf.byteOffset);
    this.free.push([buf.byteOffset, len]);
    this.free.sort((a, b) => a[0] - b[0]);
    const merged: Array<[number, number]> = [];
    for (const r of this.free) {
      const last = merged[merged.length - 1];
      if (last && last[0] + last[1] === r[0]) last[1] += r[1];
      else merged.push([r[0], r[1]]);
    }
    this.free = merged;
    return true;
  }
}
