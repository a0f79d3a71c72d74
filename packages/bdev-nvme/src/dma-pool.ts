import { PAGE_SIZE } from './prp';

/** DMA memory as the PCIe transport sees it: bytes and the device address of byte 0. */
export interface DmaMemory {
  buffer: ArrayBuffer;
  iova: number;
}

/**
 * A pool of 4 KiB pages carved out of one DMA region: bounce pages for I/O data and PRP list
 * pages. Pages need not be contiguous (PRPs describe each page), so allocation is a free stack of
 * page numbers: O(pages) per call, no fragmentation. Not thread safe (one event loop).
 */
export class DmaPool {
  private readonly free: Int32Array;
  private top: number;
  /** One view per page, made once. */
  private readonly views: Uint8Array[];

  constructor(private readonly mem: DmaMemory) {
    const n = Math.floor(mem.buffer.byteLength / PAGE_SIZE);
    this.free = new Int32Array(n);
    for (let i = 0; i < n; i++) this.free[i] = n - 1 - i;
    this.top = n;
    this.views = Array.from({ length: n }, (_, i) => new Uint8Array(mem.buffer, i * PAGE_SIZE, PAGE_SIZE));
  }

  /** Total pages. */
  get size(): number {
    return this.views.length;
  }

  /** Pages not allocated. */
  get available(): number {
    return this.top;
  }

  /** `count` page numbers, or null (nothing taken) when fewer are free. */
  alloc(count: number): number[] | null {
    if (count > this.top) return null;
    const out = new Array<number>(count);
    for (let i = 0; i < count; i++) out[i] = this.free[--this.top];
    return out;
  }

  /** Returns pages taken by alloc. */
  release(pages: readonly number[]): void {
    for (const p of pages) this.free[this.top++] = p;
  }

  /** Device address of page `p`. */
  iova(p: number): number {
    return this.mem.iova + p * PAGE_SIZE;
  }

  /** The bytes of page `p`. */
  bytes(p: number): Uint8Array {
    return this.views[p];
  }
}

/** Copies `len` bytes from the scatter list `src` into the pages `pages` of `pool`, in order. */
export function copyToPages(pool: DmaPool, pages: readonly number[], src: readonly Uint8Array[], len: number): void {
  let pi = 0;
  let po = 0;
  let left = len;
  for (const iov of src) {
    let io = 0;
    while (io < iov.length && left > 0) {
      const n = Math.min(iov.length - io, PAGE_SIZE - po, left);
      pool.bytes(pages[pi]).set(iov.subarray(io, io + n), po);
      io += n;
      po += n;
      left -= n;
      if (po === PAGE_SIZE) {
        pi++;
        po = 0;
      }
    }
    if (left === 0) return;
  }
}

/** Copies `len` bytes from the pages `pages` of `pool` into the scatter list `dst`, in order. */
export function copyFromPages(pool: DmaPool, pages: readonly number[], dst: readonly Uint8Array[], len: number): void {
  let pi = 0;
  let po = 0;
  let left = len;
  for (const iov of dst) {
    let io = 0;
    while (io < iov.length && left > 0) {
      const n = Math.min(iov.length - io, PAGE_SIZE - po, left);
      iov.set(pool.bytes(pages[pi]).subarray(po, po + n), io);
      io += n;
      po += n;
      left -= n;
      if (po === PAGE_SIZE) {
        pi++;
        po = 0;
      }
    }
    if (left === 0) return;
  }
}
