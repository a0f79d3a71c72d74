import { ringOrder, VRING_USED_F_NO_NOTIFY, VringDescFlags } from '@blockwork/vhost-user';
import type { QueueLayout } from './memory-layout';

const TWO32 = 2 ** 32;

/**
 * Driver-side mechanics of a split virtqueue over shared memory: the free-descriptor stack, chain
 * writing, avail publication and used-ring consumption. Knows nothing about block requests.
 * Descriptor `next` links and chain lengths are shadowed locally, so a device scribbling on the
 * descriptor table cannot make us free the wrong descriptors.
 */
export class SplitRing {
  readonly size: number;
  private readonly desc32: Uint32Array;
  private readonly avail16: Uint16Array;
  private readonly used16: Uint16Array;
  private readonly used32: Uint32Array;
  private readonly freeStack: Uint16Array;
  /** Free descriptors. */
  nFree: number;
  private readonly next: Uint16Array;
  private readonly chainLen: Uint16Array;
  private availIdx = 0;
  private published = 0;
  private lastUsed = 0;
  private usedEnd = 0;

  constructor(L: QueueLayout, buffer: ArrayBuffer) {
    this.size = L.size;
    this.desc32 = new Uint32Array(buffer, L.descOff, 4 * L.size);
    this.avail16 = new Uint16Array(buffer, L.availOff, 3 + L.size);
    this.used16 = new Uint16Array(buffer, L.usedOff, 3 + 4 * L.size);
    this.used32 = new Uint32Array(buffer, L.usedOff, 1 + 2 * L.size);
    this.freeStack = new Uint16Array(L.size);
    for (let i = 0; i < L.size; i++) this.freeStack[i] = L.size - 1 - i;
    this.nFree = L.size;
    this.next = new Uint16Array(L.size);
    this.chainLen = new Uint16Array(L.size);
  }

  /** The descriptor the next `take` returns: the head of the chain about to be written. */
  peekHead(): number {
    return this.freeStack[this.nFree - 1];
  }

  /** Pops a free descriptor and fills it (no NEXT yet). The caller checked `nFree`. */
  take(addr: number, len: number, flags: number): number {
    const d = this.freeStack[--this.nFree];
    const o = d * 4;
    this.desc32[o] = addr % TWO32;
    this.desc32[o + 1] = Math.floor(addr / TWO32);
    this.desc32[o + 2] = len;
    this.desc32[o + 3] = flags; // flags in the low half, next (0) in the high half
    return d;
  }

  /** Fills a new descriptor and chains `prev` to it. */
  link(prev: number, addr: number, len: number, flags: number): number {
    const d = this.take(addr, len, flags);
    this.next[prev] = d;
    this.desc32[prev * 4 + 3] |= VringDescFlags.NEXT | (d << 16);
    return d;
  }

  /** Puts a finished chain of `count` descriptors in the next avail slot (not yet visible). */
  add(head: number, count: number): void {
    this.chainLen[head] = count;
    this.avail16[2 + (this.availIdx % this.size)] = head;
    this.availIdx = (this.availIdx + 1) & 0xffff;
  }

  /**
   * Makes added chains visible with one index store (seq_cst + full fence, see docs/bdev-virtio.md)
   * and says whether to kick: false when nothing new or when the device set NO_NOTIFY, read after
   * the fence so a device clearing it before re-checking avail cannot be missed.
   */
  publish(): boolean {
    if (this.availIdx === this.published) return false;
    this.published = this.availIdx;
    ringOrder.storeFence16(this.avail16, 1, this.availIdx);
    return (this.used16[0] & VRING_USED_F_NO_NOTIFY) === 0;
  }

  /** Snapshots used.idx (acquire); then `nextUsed` walks the new elements. */
  beginReap(): void {
    this.usedEnd = ringOrder.loadAcquire16(this.used16, 1);
  }

  /** used.idx as the device last published it (acquire): the vring base a new back end starts from. */
  deviceUsedIdx(): number {
    return ringOrder.loadAcquire16(this.used16, 1);
  }

  /** Head id of the next used element, or -1 when the snapshot is consumed. Ids are not validated. */
  nextUsed(): number {
    if (this.lastUsed === this.usedEnd) return -1;
    const e = this.lastUsed % this.size;
    this.lastUsed = (this.lastUsed + 1) & 0xffff;
    return this.used32[1 + 2 * e];
  }

  /** Returns a chain's descriptors to the free stack (by the shadow links). */
  free(head: number): void {
    let d = head;
    for (let k = this.chainLen[head]; k > 0; k--) {
      this.freeStack[this.nFree++] = d;
      d = this.next[d];
    }
  }
}
