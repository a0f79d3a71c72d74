import { type DmaMemory, type DmaPool, copyFromPages, copyToPages } from './dma-pool';
import { CQE_SIZE, SQE_SIZE } from './nvme-spec';
import { PAGE_SIZE, type PrpListPage, prpDataPages, prpListPages, writePrps } from './prp';
import { DataDir, NvmeQpair, type NvmeRequest, QP_DISCONNECTED } from './qpair';

/** What a PCIe queue pair needs of the device: doorbell writes (fenced MMIO stores). */
export interface DoorbellWriter {
  doorbell(off: number, value: number): void;
}

/** One submission/completion queue pair in host memory, driven through BAR0 doorbells. */
export interface PcieQpairOptions {
  /** Queue id (0 = admin). */
  qid: number;
  /** Command ids; the SQ and CQ get depth + 1 entries (a queue holds at most entries − 1). */
  depth: number;
  /** Per-command timeout in ms (0 = none). */
  timeoutMs: number;
  regs: DoorbellWriter;
  /** CAP.DSTRD: doorbells are (4 << dstrd) bytes apart. */
  dstrd: number;
  /** DMA memory of at least PcieQpair.queueBytes(depth): SQ at 0, CQ at the next page boundary after it. */
  queueMem: DmaMemory;
  /** Bounce pages for data and PRP list pages. */
  pool: DmaPool;
  /** Poll the CQ with setImmediate while commands are outstanding (default true; tests poll by hand). */
  autoPoll?: boolean;
}

/**
 * A queue pair of the NVMe PCIe transport. Submission writes the 64-byte entry into the SQ ring
 * and rings the SQ tail doorbell once per event-loop turn; completions are found by polling the
 * CQ for entries whose phase tag matches the expected phase (which flips at each wrap), then the
 * CQ head doorbell is written. Data is bounced: caller buffers are not DMA mapped, so writes are
 * copied into pool pages before submission and reads copied out at completion; PRP1/PRP2 and PRP
 * lists describe the pool pages. A command that finds no free pages waits in a FIFO until pages
 * come back.
 */
export class PcieQpair extends NvmeQpair {
  readonly sqEntries: number;
  readonly sqIova: number;
  readonly cqIova: number;
  private readonly sq: Uint8Array;
  private readonly cq: DataView;
  private sqTail = 0;
  private sqTailRung = 0;
  /** Last SQ head the controller reported (CQE DW2). */
  sqHead = 0;
  private cqHead = 0;
  private phase = 1;
  private readonly sqDoorbell: number;
  private readonly cqDoorbell: number;
  /** Pool pages (data first, then PRP lists) held by each command id. */
  private readonly held: (number[] | null)[];
  private readonly waitingForPages: NvmeRequest[] = [];
  private ringScheduled = false;
  private polling = false;
  private ended = false;
  /** Completions for command ids not outstanding (a controller bug); counted, dropped. */
  strayCompletions = 0;
  private readonly ring = () => this.ringSq();
  private readonly pollTick = () => this.autoPollTick();

  /** Bytes of DMA memory one queue pair of `depth` command ids needs for its SQ and CQ. */
  static queueBytes(depth: number): number {
    return pageAlign((depth + 1) * SQE_SIZE) + pageAlign((depth + 1) * CQE_SIZE);
  }

  constructor(private readonly o: PcieQpairOptions) {
    super(o.qid, o.depth, o.timeoutMs);
    this.sqEntries = o.depth + 1;
    const cqOff = pageAlign(this.sqEntries * SQE_SIZE);
    if (o.queueMem.buffer.byteLength < PcieQpair.queueBytes(o.depth)) throw new RangeError('PcieQpair: queue memory too small');
    this.sq = new Uint8Array(o.queueMem.buffer, 0, this.sqEntries * SQE_SIZE);
    this.cq = new DataView(o.queueMem.buffer, cqOff, this.sqEntries * CQE_SIZE);
    new Uint8Array(o.queueMem.buffer, 0, PcieQpair.queueBytes(o.depth)).fill(0);
    this.sqIova = o.queueMem.iova;
    this.cqIova = o.queueMem.iova + cqOff;
    const stride = 4 << o.dstrd;
    this.sqDoorbell = 0x1000 + 2 * o.qid * stride;
    this.cqDoorbell = 0x1000 + (2 * o.qid + 1) * stride;
    this.held = new Array(o.depth).fill(null);
  }

  protected transportSubmit(req: NvmeRequest): void {
    if (this.waitingForPages.length > 0 || !this.place(req)) this.waitingForPages.push(req);
  }

  /** Bounces the data, writes PRPs and queues the entry; false when the pool is short of pages. */
  private place(req: NvmeRequest): boolean {
    const sqe = req.sqe;
    sqe[1] &= ~0xc0; // PSDT 00b: PRPs
    if (req.dataLen > 0) {
      const pool = this.o.pool;
      const nData = prpDataPages(0, req.dataLen);
      const pages = pool.alloc(nData + prpListPages(nData));
      if (pages === null) {
        if (pool.available < pool.size) return false;
        // Larger than the whole pool: it could never go. The bdev layer splits below this, so only a
        // misuse gets here; it fails like an NVMe Invalid Field (with DNR) instead of throwing.
        this.complete(req.cid, SF_INVALID_FIELD_DNR);
        return true;
      }
      this.held[req.cid] = pages;
      if (req.dir === DataDir.H2C) copyToPages(pool, pages, req.iovs, req.dataLen);
      const lists: PrpListPage[] = [];
      for (let i = nData; i < pages.length; i++) lists.push({ iova: pool.iova(pages[i]), bytes: pool.bytes(pages[i]) });
      writePrps(sqe, pages.slice(0, nData).map((p) => pool.iova(p)), 0, req.dataLen, lists);
    }
    this.sq.set(sqe, this.sqTail * SQE_SIZE);
    this.sqTail = this.sqTail + 1 === this.sqEntries ? 0 : this.sqTail + 1;
    if (!this.ringScheduled) {
      this.ringScheduled = true;
      process.nextTick(this.ring);
    }
    this.startPolling();
    return true;
  }

  /** One doorbell write for every entry queued in this turn. */
  private ringSq(): void {
    this.ringScheduled = false;
    if (this.ended || this.sqTail === this.sqTailRung) return;
    this.sqTailRung = this.sqTail;
    this.o.regs.doorbell(this.sqDoorbell, this.sqTail);
  }

  /**
   * Reaps every new completion (phase tag = expected phase), then writes the CQ head doorbell
   * once. Returns how many were reaped. Synchronous; callbacks may submit again.
   */
  poll(): number {
    if (this.ended) return 0;
    let n = 0;
    const cq = this.cq;
    for (;;) {
      const off = this.cqHead * CQE_SIZE;
      const dw3 = cq.getUint32(off + 12, true);
      if (((dw3 >>> 16) & 1) !== this.phase) break;
      // The phase bit was read first: the rest of the entry is complete (x86 keeps loads ordered).
      const dw0 = cq.getUint32(off, true);
      const dw1 = cq.getUint32(off + 4, true);
      this.sqHead = cq.getUint16(off + 8, true);
      if (++this.cqHead === this.sqEntries) {
        this.cqHead = 0;
        this.phase ^= 1;
      }
      n++;
      this.reap(dw3 & 0xffff, dw3 >>> 17, dw0, dw1);
    }
    if (n > 0 && !this.ended) {
      this.o.regs.doorbell(this.cqDoorbell, this.cqHead);
      this.retryWaiting();
    }
    return n;
  }

  private reap(cid: number, sf: number, dw0: number, dw1: number): void {
    const req = this.lookup(cid);
    if (req === undefined) {
      this.strayCompletions++;
      return;
    }
    const pages = this.held[cid];
    if (pages !== null) {
      this.held[cid] = null;
      // A timed-out (abandoned) read's buffers may belong to someone else by now: drop its data.
      if (sf === 0 && req.dir === DataDir.C2H && !req.abandoned) copyFromPages(this.o.pool, pages, req.iovs, req.dataLen);
      this.o.pool.release(pages);
    }
    this.complete(cid, sf, dw0, dw1);
  }

  private retryWaiting(): void {
    while (this.waitingForPages.length > 0 && !this.ended) {
      const req = this.waitingForPages[0];
      if (!req.active) {
        // Timed out while waiting: never reached the controller, so free its reserved command id.
        this.waitingForPages.shift();
        if (req.abandoned) this.complete(req.cid, 0);
        continue;
      }
      if (!this.place(req)) return;
      this.waitingForPages.shift();
    }
  }

  private startPolling(): void {
    if (this.polling || this.o.autoPoll === false) return;
    this.polling = true;
    setImmediate(this.pollTick);
  }

  private autoPollTick(): void {
    this.poll();
    if (!this.ended && this.outstanding > 0) setImmediate(this.pollTick);
    else this.polling = false;
  }

  /** Where the host is in the rings, for tests and diagnostics. */
  get position(): { sqTail: number; cqHead: number; phase: number } {
    return { sqTail: this.sqTail, cqHead: this.cqHead, phase: this.phase };
  }

  /** Stops using the queues: outstanding commands fail with QP_DISCONNECTED, pages go back. Idempotent. */
  override close(): void {
    if (this.ended) return;
    this.ended = true;
    this.waitingForPages.length = 0;
    this.failAll(QP_DISCONNECTED);
    for (let i = 0; i < this.held.length; i++) {
      const p = this.held[i];
      if (p !== null) this.o.pool.release(p);
      this.held[i] = null;
    }
  }
}

const SF_INVALID_FIELD_DNR = 0x4002;

function pageAlign(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}
