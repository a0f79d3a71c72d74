/**
 * The shared inflight region of INFLIGHT_SHMFD (vhost-user.rst "Inflight I/O tracking"), split-ring
 * layout as DPDK, SPDK and libvhost-user lay it out, so a region QEMU kept from any of them is
 * understood. Per queue, rounded up to 64 bytes:
 *
 *   header  16 bytes  features u64 @0, version u16 @8, desc_num u16 @10,
 *                     last_batch_head u16 @12 (DPDK: last_inflight_io), used_idx u16 @14
 *   desc    desc_num × 16 bytes  inflight u8 @0, padding[5], next u16 @6, counter u64 @8
 *
 * The region outlives the back end (QEMU keeps the memfd), which is the whole point: whatever was
 * stored before a crash is what the next process reads back.
 */

/** Header bytes per queue. */
export const INFLIGHT_HEADER_BYTES = 16;
/** Bytes per descriptor entry. */
export const INFLIGHT_DESC_BYTES = 16;
/** A queue's slice is rounded up to this many bytes. */
export const INFLIGHT_ALIGN = 64;
/** `version` once a back end has started using the slice (0: fresh, nothing to recover). */
export const INFLIGHT_VERSION = 1;

const H_VERSION = 8;
const H_DESC_NUM = 10;
const H_LAST_BATCH_HEAD = 12;
const H_USED_IDX = 14;
const D_INFLIGHT = 0;
const D_COUNTER = 8;

/** Bytes of one queue's slice for `queueSize` descriptors (2112 for 128). */
export function inflightQueueBytes(queueSize: number): number {
  const raw = INFLIGHT_HEADER_BYTES + INFLIGHT_DESC_BYTES * queueSize;
  return Math.ceil(raw / INFLIGHT_ALIGN) * INFLIGHT_ALIGN;
}

/** Bytes of the whole region (mmap_size of GET_INFLIGHT_FD). */
export function inflightRegionBytes(numQueues: number, queueSize: number): number {
  return numQueues * inflightQueueBytes(queueSize);
}

/** What `recover` found: heads to resubmit (oldest counter first) and whether the fix-up applied. */
export interface InflightRecovery {
  /** Heads still marked in flight, ordered by counter (the order they were taken). */
  heads: number[];
  /** True when used_idx differed from the ring's: last_batch_head was treated as completed. */
  fixedUp: boolean;
  /** True when the slice was fresh (version 0): nothing was recovered. */
  fresh: boolean;
}

/**
 * One queue's slice. All accesses are bounds-checked by construction: the view is exactly
 * `inflightQueueBytes(size)` long and every head is checked against `size` by the caller (heads
 * come from the avail ring and are range-checked before `mark`).
 */
export class InflightQueue {
  private readonly view: DataView;
  private readonly bytes: Uint8Array;
  /** Next counter value; counters increase across restarts (recover continues from the max). */
  private counter = 1;

  /**
   * @param bytes the queue's slice (at least inflightQueueBytes(size) bytes; a view of the mapping)
   * @param size  the queue size (= desc_num)
   */
  constructor(bytes: Uint8Array, readonly size: number) {
    const len = inflightQueueBytes(size);
    if (bytes.length < len) throw new RangeError(`inflight slice is ${bytes.length} bytes, ${len} needed for ${size} descriptors`);
    this.bytes = bytes.subarray(0, len);
    this.view = new DataView(bytes.buffer, bytes.byteOffset, len);
  }

  get version(): number {
    return this.view.getUint16(H_VERSION, true);
  }

  get descNum(): number {
    return this.view.getUint16(H_DESC_NUM, true);
  }

  /** desc_num (written at SET_INFLIGHT_FD, as DPDK and libvhost-user do). */
  setDescNum(n: number): void {
    this.view.setUint16(H_DESC_NUM, n & 0xffff, true);
  }

  get lastBatchHead(): number {
    return this.view.getUint16(H_LAST_BATCH_HEAD, true);
  }

  get usedIdx(): number {
    return this.view.getUint16(H_USED_IDX, true);
  }

  isInflight(head: number): boolean {
    return this.bytes[INFLIGHT_HEADER_BYTES + head * INFLIGHT_DESC_BYTES + D_INFLIGHT] === 1;
  }

  counterOf(head: number): number {
    const off = INFLIGHT_HEADER_BYTES + head * INFLIGHT_DESC_BYTES + D_COUNTER;
    return this.view.getUint32(off + 4, true) * 0x100000000 + this.view.getUint32(off, true);
  }

  /** Step 1 of a request: counter first, then the flag (a crash in between leaves it not in flight). */
  mark(head: number): void {
    const off = INFLIGHT_HEADER_BYTES + head * INFLIGHT_DESC_BYTES;
    const c = this.counter++;
    this.view.setUint32(off + D_COUNTER, c >>> 0, true);
    this.view.setUint32(off + D_COUNTER + 4, Math.floor(c / 0x100000000), true);
    this.bytes[off + D_INFLIGHT] = 1;
  }

  /** Completion step 2 (after the used element is written, before used->idx is published). */
  setLastBatchHead(head: number): void {
    this.view.setUint16(H_LAST_BATCH_HEAD, head, true);
  }

  /** Completion step 4 (after used->idx is published). */
  clear(head: number): void {
    this.bytes[INFLIGHT_HEADER_BYTES + head * INFLIGHT_DESC_BYTES + D_INFLIGHT] = 0;
  }

  /** Completion step 5: the region's copy of used->idx. */
  setUsedIdx(idx: number): void {
    this.view.setUint16(H_USED_IDX, idx & 0xffff, true);
  }

  /**
   * Recovery at queue start (SET_VRING_KICK after SET_INFLIGHT_FD), `ringUsedIdx` being used->idx
   * as the guest sees it. A fresh slice (version 0) is stamped and nothing is recovered. Otherwise:
   * if the saved used_idx differs from the ring's, the back end died after publishing used->idx for
   * last_batch_head but before clearing it, so that head is complete; then every head still marked
   * is returned in counter order. The counter continues above the largest one found.
   */
  recover(ringUsedIdx: number): InflightRecovery {
    if (this.version === 0) {
      this.view.setUint16(H_VERSION, INFLIGHT_VERSION, true);
      this.setUsedIdx(ringUsedIdx);
      return { heads: [], fixedUp: false, fresh: true };
    }
    let fixedUp = false;
    if (this.usedIdx !== (ringUsedIdx & 0xffff)) {
      const last = this.lastBatchHead;
      if (last < this.size) this.clear(last);
      this.setUsedIdx(ringUsedIdx);
      fixedUp = true;
    }
    const found: Array<{ head: number; counter: number }> = [];
    let max = 0;
    for (let h = 0; h < this.size; h++) {
      if (!this.isInflight(h)) continue;
      const counter = this.counterOf(h);
      found.push({ head: h, counter });
      if (counter > max) max = counter;
    }
    found.sort((a, b) => a.counter - b.counter || a.head - b.head);
    this.counter = Math.max(this.counter, max + 1);
    return { heads: found.map((f) => f.head), fixedUp, fresh: false };
  }
}
