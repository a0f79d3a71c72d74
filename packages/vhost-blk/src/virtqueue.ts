import { type DirtyMarker, type GuestMemory, u64ToNumber } from './guest-memory';

/** Descriptor flags (virtio 1.x §2.7.5). */
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
/** avail->flags: the driver asks for no used-buffer notification (ignored with EVENT_IDX). */
export const VRING_AVAIL_F_NO_INTERRUPT = 1;
/** Largest split-queue size (2^15). */
export const MAX_QUEUE_SIZE = 32768;

/** Reasons `walk` refuses a chain (negative, so 0 means success). */
export const ChainError = {
  HEAD_RANGE: -1,
  NEXT_RANGE: -2,
  TOO_LONG: -3,
  INDIRECT_NESTED: -4,
  INDIRECT_LEN: -5,
  INDIRECT_RANGE: -6,
  BUFFER_RANGE: -7,
  INDIRECT_WITH_NEXT: -8,
} as const;

const CHAIN_ERROR_TEXT: Record<number, string> = {
  [ChainError.HEAD_RANGE]: 'head index is not below the queue size',
  [ChainError.NEXT_RANGE]: 'next index is not below the table size',
  [ChainError.TOO_LONG]: 'chain longer than the queue size (loop?)',
  [ChainError.INDIRECT_NESTED]: 'indirect descriptor inside an indirect table',
  [ChainError.INDIRECT_LEN]: 'indirect table length is 0, not a multiple of 16 or above the queue size',
  [ChainError.INDIRECT_RANGE]: 'indirect table is outside guest memory',
  [ChainError.BUFFER_RANGE]: 'buffer is outside guest memory',
  [ChainError.INDIRECT_WITH_NEXT]: 'descriptor has both INDIRECT and NEXT',
};

/** Text for a ChainError value. */
export function chainErrorText(e: number): string {
  return CHAIN_ERROR_TEXT[e] ?? `chain error ${e}`;
}

/**
 * The buffers of one descriptor chain, flattened (indirect tables expanded) and already translated:
 * region index and offset into guest memory. Reused for every request of a queue; its contents are
 * valid until the next `walk`. Zero-length descriptors are dropped.
 */
export class DescChain {
  count = 0;
  readonly region: Int32Array;
  readonly offset: Float64Array;
  readonly len: Uint32Array;
  readonly writable: Uint8Array;

  constructor(readonly capacity: number) {
    this.region = new Int32Array(capacity);
    this.offset = new Float64Array(capacity);
    this.len = new Uint32Array(capacity);
    this.writable = new Uint8Array(capacity);
  }
}

/** Guest addresses of a queue's three parts, in the front end's virtual address space (SET_VRING_ADDR). */
export interface VringAddrs {
  desc: number;
  avail: number;
  used: number;
  /**
   * Guest physical address of the used ring for the dirty log (log_guest_addr of SET_VRING_ADDR
   * with VHOST_VRING_F_LOG), or -1 / absent: the used ring is then not logged.
   */
  log?: number;
}

/**
 * Ordered 16-bit index accesses (the shape of @blockwork/vhost-user's `ringOrder`): the session
 * passes that native helper; the default uses Atomics, which suffices for tests over ArrayBuffers.
 */
export interface RingOrder {
  /** Store with a full barrier after it (publish an index, then read the peer's event index). */
  storeFence16(view: Uint16Array, index: number, value: number): void;
  /** Load; later loads are not reordered before it. */
  loadAcquire16(view: Uint16Array, index: number): number;
}

/** Atomics-based RingOrder: seq_cst store (XCHG on x86-64) and load. */
export const atomicsRingOrder: RingOrder = {
  storeFence16: (v, i, x) => {
    Atomics.store(v, i, x);
  },
  loadAcquire16: (v, i) => Atomics.load(v, i),
};

/**
 * One split virtqueue over guest memory. Ring parts are located once (`create`) with their full
 * sizes checked against one region each; after that every access is inside those checked views.
 *
 * Memory ordering (the guest driver runs on other CPUs): we read avail->idx with Atomics.load and
 * only then the ring entries and descriptors (`loadAcquire16`); we write used elements and status
 * bytes with plain stores and publish used->idx with `storeFence16`. We rely on: (1) V8 keeping
 * typed-array loads and stores in program order (they are effectful operations in TurboFan's
 * effect chain), (2) x86-64 TSO (loads not reordered with loads, stores not with stores), and (3)
 * `storeFence16` being a full barrier, which provides the store-load fence needed between
 * publishing used->idx (or avail_event) and reading used_event or avail->idx again (the
 * virtio_mb() of Linux's virtqueue code). In the daemon it is the native helper of
 * @blockwork/vhost-user (a C++ seq_cst fence); `atomicsRingOrder` (XCHG) serves tests.
 */
export class SplitVirtqueue {
  /** Next avail ring position to consume (free-running u16). */
  lastAvailIdx: number;
  /** Next used ring position to fill (free-running u16, published at `publishUsed`). */
  usedIdx: number;
  /** used->idx as last published, for the event-idx "need signal" check. */
  private publishedUsed: number;
  /**
   * Guest physical address of the used ring for dirty logging, -1 for none. QEMU sets it with a
   * SET_VRING_ADDR while the queue runs (migration start), so the session updates it in place.
   */
  logUsed: number;

  private constructor(
    readonly size: number,
    private readonly mem: GuestMemory,
    private readonly desc: DataView,
    private readonly avail: DataView,
    private readonly avail16: Uint16Array,
    private readonly used: DataView,
    private readonly used16: Uint16Array,
    readonly eventIdx: boolean,
    base: number,
    private readonly order: RingOrder,
  ) {
    this.lastAvailIdx = base & 0xffff;
    this.usedIdx = base & 0xffff;
    this.publishedUsed = base & 0xffff;
    this.logUsed = -1;
  }

  /**
   * Locates the rings. `size` must be a power of two ≤ 32768; desc (16·size bytes, 16-aligned),
   * avail (4+2·size, +2 with event idx, 2-aligned) and used (4+8·size, +2 with event idx,
   * 4-aligned) must each lie inside one region. Returns the queue or a sentence saying what is wrong.
   */
  static create(mem: GuestMemory, size: number, addrs: VringAddrs, eventIdx: boolean, base: number, order: RingOrder = atomicsRingOrder): SplitVirtqueue | string {
    if (!Number.isInteger(size) || size < 1 || size > MAX_QUEUE_SIZE || (size & (size - 1)) !== 0) return `queue size ${size} is not a power of two ≤ ${MAX_QUEUE_SIZE}`;
    if (addrs.desc % 16 !== 0 || addrs.avail % 2 !== 0 || addrs.used % 4 !== 0) return 'vring addresses are misaligned';
    const extra = eventIdx ? 2 : 0;
    const d = viewAt(mem, addrs.desc, 16 * size);
    const a = viewAt(mem, addrs.avail, 4 + 2 * size + extra);
    const u = viewAt(mem, addrs.used, 4 + 8 * size + extra);
    if (d === null) return 'descriptor table is outside guest memory';
    if (a === null) return 'avail ring is outside guest memory';
    if (u === null) return 'used ring is outside guest memory';
    if (a.byteOffset % 2 !== 0 || u.byteOffset % 4 !== 0) return 'vring mapping is misaligned';
    const a16 = new Uint16Array(a.buffer, a.byteOffset, a.byteLength >>> 1);
    const u16 = new Uint16Array(u.buffer, u.byteOffset, u.byteLength >>> 1);
    const q = new SplitVirtqueue(size, mem, d, a, a16, u, u16, eventIdx, base, order);
    q.logUsed = addrs.log ?? -1;
    return q;
  }

  /** avail->idx, read once per batch (acquire side: entries are read after it). */
  availIdx(): number {
    return this.order.loadAcquire16(this.avail16, 1);
  }

  /** Entries available since lastAvailIdx for a given avail idx; > size means a broken driver. */
  pending(availIdx: number): number {
    return (availIdx - this.lastAvailIdx) & 0xffff;
  }

  /** Consumes the next avail ring entry and returns its head index (not yet range-checked). */
  nextHead(): number {
    const head = this.avail.getUint16(4 + 2 * (this.lastAvailIdx & (this.size - 1)), true);
    this.lastAvailIdx = (this.lastAvailIdx + 1) & 0xffff;
    return head;
  }

  /**
   * Walks the chain starting at `head` into `chain` (capacity ≥ size). Hop limit: the whole chain,
   * indirect entries included, may have at most `size` descriptors (virtio forbids longer chains),
   * which also stops loops. One level of indirection. Returns 0 or a ChainError.
   */
  walk(head: number, chain: DescChain): number {
    chain.count = 0;
    const size = this.size;
    if (head >= size) return ChainError.HEAD_RANGE;
    const mem = this.mem;
    let table = this.desc;
    let base = 0;
    let tableSize = size;
    let indirect = false;
    let idx = head;
    let hops = 0;
    for (;;) {
      if (++hops > size) return ChainError.TOO_LONG;
      const off = base + idx * 16;
      const addr = u64ToNumber(table, off);
      const len = table.getUint32(off + 8, true);
      const flags = table.getUint16(off + 12, true);
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
        if (indirect) return ChainError.INDIRECT_NESTED;
        if ((flags & VIRTQ_DESC_F_NEXT) !== 0) return ChainError.INDIRECT_WITH_NEXT;
        if (len === 0 || len % 16 !== 0 || len / 16 > size) return ChainError.INDIRECT_LEN;
        const r = addr < 0 ? -1 : mem.findGpa(addr, len);
        if (r < 0) return ChainError.INDIRECT_RANGE;
        table = mem.regions[r].view;
        base = mem.offset;
        tableSize = len / 16;
        indirect = true;
        idx = 0;
        hops--; // the indirect descriptor itself carries no buffer
        continue;
      }
      if (len > 0) {
        const r = addr < 0 ? -1 : mem.findGpa(addr, len);
        if (r < 0) return ChainError.BUFFER_RANGE;
        const n = chain.count++;
        chain.region[n] = r;
        chain.offset[n] = mem.offset;
        chain.len[n] = len;
        chain.writable[n] = (flags & VIRTQ_DESC_F_WRITE) !== 0 ? 1 : 0;
      }
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) return 0;
      idx = table.getUint16(off + 14, true);
      if (idx >= tableSize) return ChainError.NEXT_RANGE;
    }
  }

  /** Writes one used element {id, len}; not visible to the driver until `publishUsed`. */
  pushUsed(id: number, len: number): void {
    const off = 4 + 8 * (this.usedIdx & (this.size - 1));
    this.used.setUint32(off, id, true);
    this.used.setUint32(off + 4, len, true);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    const d = this.mem.dirty;
    if (d !== null) this.logUsedRing(d, off, 8);
  }

  /** Marks [off, off + len) of the used ring, if the front end gave its guest physical address. */
  private logUsedRing(d: DirtyMarker, off: number, len: number): void {
    if (this.logUsed >= 0) d.mark(this.logUsed + off, len);
  }

  /**
   * Stores used->idx = usedIdx now (fenced), leaving the notification bookkeeping of `publishUsed`
   * alone. With inflight tracking every completion is published on its own, so the region's
   * single last_batch_head always names the only element a crash can leave half-recorded.
   */
  publishIdx(): void {
    this.order.storeFence16(this.used16, 1, this.usedIdx);
    const d = this.mem.dirty;
    if (d !== null) this.logUsedRing(d, 2, 2);
  }

  /** used->idx as it is in guest memory now. */
  ringUsedIdx(): number {
    return this.order.loadAcquire16(this.used16, 1);
  }

  /**
   * Recovery after a back-end restart: continue at the ring's used->idx, with `resubmitted` heads
   * already taken from the avail ring (libvhost-user's rule: last_avail = used_idx + in flight).
   */
  restoreFromRing(resubmitted: number): void {
    const used = this.ringUsedIdx();
    this.usedIdx = used;
    this.publishedUsed = used;
    this.lastAvailIdx = (used + resubmitted) & 0xffff;
  }

  /** Used elements pushed but not yet published. */
  get unpublished(): number {
    return (this.usedIdx - this.publishedUsed) & 0xffff;
  }

  /**
   * Publishes used->idx (after the elements: release side) and says whether the driver wants a
   * notification for the elements just published (EVENT_IDX: used_event crossed; otherwise
   * avail->flags lacks NO_INTERRUPT).
   */
  publishUsed(): boolean {
    const old = this.publishedUsed;
    const now = this.usedIdx;
    if (old === now) return false;
    this.order.storeFence16(this.used16, 1, now);
    this.publishedUsed = now;
    // After the store, never before: QEMU may harvest the bit and copy the page in between.
    const d = this.mem.dirty;
    if (d !== null) this.logUsedRing(d, 2, 2);
    if (this.eventIdx) {
      const usedEvent = this.avail.getUint16(4 + 2 * this.size, true);
      return ((now - usedEvent - 1) & 0xffff) < ((now - old) & 0xffff);
    }
    return (this.avail.getUint16(0, true) & VRING_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /**
   * With EVENT_IDX, asks for a kick when the driver adds entries past lastAvailIdx. The caller then
   * re-reads avail->idx (the fenced store makes this race-free).
   */
  armAvailEvent(): void {
    if (!this.eventIdx) return;
    this.order.storeFence16(this.used16, 2 + 4 * this.size, this.lastAvailIdx);
    const d = this.mem.dirty;
    if (d !== null) this.logUsedRing(d, 4 + 8 * this.size, 2);
  }
}

function viewAt(mem: GuestMemory, uva: number, len: number): DataView | null {
  const r = mem.findUva(uva, len);
  if (r < 0) return null;
  const b = mem.regions[r].bytes;
  return new DataView(b.buffer, b.byteOffset + mem.offset, len);
}
