import { type BdevChannel, type BdevIo, CompletionBatch, type DriverDone, IoType } from '@blockwork/core';
import type { ControllerListener, ControllerState, NvmeController } from './controller';
import { IoOpc, sqeCdw, sqeInit, sqeLba, statusToErrno } from './nvme-spec';
import { DataDir, type NvmeRequest, QP_CANCELED, QP_DISCONNECTED, QP_TIMEOUT } from './qpair';

const EIO = -5;
const ENODEV = -19;
const ETIMEDOUT = -110;
/** Write Zeroes NLB is 16 bits; DSM ranges are 32 bits of blocks, up to 256 ranges per command. */
const MAX_WZ_BLOCKS = 0x10000;
const MAX_RANGE_BLOCKS = 0xffffffff;

/** Per-I/O driver state for I/Os split into several NVMe commands (large write_zeroes). */
interface Parts {
  pending: number;
  status: number;
}

/** What an NvmeChannel needs from its bdev. */
export interface NvmeChannelTarget {
  readonly ctrlr: NvmeController;
  readonly nsid: number;
  readonly blockSize: number;
  /** Set once the bdev is being removed: queued I/O fails with -ENODEV. */
  readonly removed: boolean;
}

/**
 * A bdev channel on one I/O queue pair of the controller (chosen round robin at creation, as
 * SPDK gives each thread its own qpair). I/O beyond the queue's command ids waits in a FIFO;
 * I/O hit by a connection loss is requeued while the controller reconnects, or fails with -EIO
 * per ctrlr_loss_timeout_sec / fast_io_fail_timeout_sec. Completion is one callback per CQE.
 */
export class NvmeChannel implements BdevChannel, ControllerListener {
  private readonly waiting: BdevIo[] = [];
  private done: DriverDone | null = null;
  /** Failures decided at submission, delivered on the next check phase (never inside submit). */
  private readonly failed = new CompletionBatch();
  private closed = false;
  private readonly onCpl = (status: number, req: NvmeRequest) => this.completed(status, req);

  constructor(private readonly t: NvmeChannelTarget, private readonly qpIndex: number) {
    t.ctrlr.addListener(this);
  }

  submit(io: BdevIo, done: DriverDone): void {
    this.done = done;
    if (this.waiting.length > 0 || !this.tryDispatch(io)) this.waiting.push(io);
  }

  /** Sends (or fails) the I/O; false when it must wait (queue full, controller reconnecting). */
  private tryDispatch(io: BdevIo): boolean {
    const c = this.t.ctrlr;
    if (c.state !== 'enabled') {
      if (this.shouldQueue()) return false;
      this.failed.add(io, this.done!, this.t.removed ? ENODEV : EIO);
      return true;
    }
    if (io.type === IoType.WRITE_ZEROES && io.numBlocks > MAX_WZ_BLOCKS) return this.writeZeroesParts(io);
    const qp = c.io[this.qpIndex % c.io.length];
    const req = qp.alloc();
    if (req === null) return false;
    this.build(req, io, io.offsetBlocks, io.numBlocks);
    req.arg = io;
    req.cb = this.onCpl;
    qp.submit(req);
    return true;
  }

  /** Whether I/O that cannot be submitted now should wait for a reconnect rather than fail. */
  private shouldQueue(): boolean {
    const c = this.t.ctrlr;
    if (this.t.removed || this.closed) return false;
    return c.state === 'connecting' || (c.state === 'resetting' && !c.fastFailed);
  }

  private build(req: NvmeRequest, io: BdevIo, off: number, n: number): void {
    const s = req.sqe;
    const nsid = this.t.nsid;
    switch (io.type) {
      case IoType.READ:
      case IoType.WRITE: {
        sqeInit(s, io.type === IoType.READ ? IoOpc.READ : IoOpc.WRITE, nsid);
        sqeLba(s, off, n);
        req.iovs = io.iovs;
        req.dataLen = n * this.t.blockSize;
        req.dir = io.type === IoType.READ ? DataDir.C2H : DataDir.H2C;
        return;
      }
      case IoType.FLUSH:
        sqeInit(s, IoOpc.FLUSH, nsid);
        return;
      case IoType.WRITE_ZEROES:
        sqeInit(s, IoOpc.WRITE_ZEROES, nsid);
        sqeLba(s, off, n);
        return;
      case IoType.UNMAP: {
        sqeInit(s, IoOpc.DSM, nsid);
        const ranges = dsmRanges(off, n);
        sqeCdw(s, 10, ranges.length / 16 - 1);
        sqeCdw(s, 11, 1 << 2); // AD: deallocate
        req.iovs = [ranges];
        req.dataLen = ranges.length;
        req.dir = DataDir.H2C;
        return;
      }
    }
  }

  /** Write Zeroes beyond the 16-bit NLB: several commands, completing the I/O with the first error. */
  private writeZeroesParts(io: BdevIo): boolean {
    const c = this.t.ctrlr;
    const qp = c.io[this.qpIndex % c.io.length];
    const count = Math.ceil(io.numBlocks / MAX_WZ_BLOCKS);
    const parts: Parts = { pending: count, status: 0 };
    io.driverCtx = parts;
    for (let i = 0; i < count; i++) {
      const off = io.offsetBlocks + i * MAX_WZ_BLOCKS;
      const n = Math.min(MAX_WZ_BLOCKS, io.offsetBlocks + io.numBlocks - off);
      const req = qp.alloc();
      if (req === null) {
        parts.pending -= count - i;
        if (parts.status === 0) parts.status = -16; // -EBUSY: rare, the queue is exhausted mid-split
        if (parts.pending === 0) this.failed.add(io, this.done!, parts.status);
        return true;
      }
      this.build(req, io, off, n);
      req.arg = io;
      req.cb = this.onCpl;
      qp.submit(req);
    }
    return true;
  }

  private completed(status: number, req: NvmeRequest): void {
    const io = req.arg as BdevIo;
    const parts = io.driverCtx as Parts | undefined;
    if (parts !== undefined) {
      if (status !== 0 && parts.status === 0) parts.status = this.errnoOf(status);
      if (--parts.pending > 0) return;
      io.driverCtx = undefined;
      this.finish(io, parts.status);
    } else if (status === QP_DISCONNECTED && this.shouldQueue()) {
      this.waiting.push(io);
    } else {
      this.finish(io, status === 0 ? 0 : this.errnoOf(status));
    }
    if (this.waiting.length > 0 && this.t.ctrlr.state === 'enabled') this.drain();
  }

  private errnoOf(status: number): number {
    if (status === QP_TIMEOUT) return ETIMEDOUT;
    if (status === QP_DISCONNECTED || status === QP_CANCELED) return this.t.removed ? ENODEV : EIO;
    return status > 0 ? statusToErrno(status) : status;
  }

  private finish(io: BdevIo, status: number): void {
    this.done!(io, status);
  }

  private drain(): void {
    while (this.waiting.length > 0 && this.tryDispatch(this.waiting[0])) this.waiting.shift();
  }

  onControllerState(state: ControllerState): void {
    if (state === 'enabled') return this.drain();
    if (!this.shouldQueue()) this.failWaiting();
  }

  private failWaiting(): void {
    const list = this.waiting.splice(0);
    const st = this.t.removed ? ENODEV : EIO;
    for (const io of list) this.failed.add(io, this.done!, st);
  }

  close(): void {
    this.closed = true;
    this.t.ctrlr.removeListener(this);
    this.failWaiting();
  }
}

/** DSM range list for [off, off+n) in ranges of at most 2^32-1 blocks (16 bytes each). */
function dsmRanges(off: number, n: number): Buffer {
  const count = Math.ceil(n / MAX_RANGE_BLOCKS);
  const b = Buffer.alloc(16 * count);
  for (let i = 0; i < count; i++) {
    const start = off + i * MAX_RANGE_BLOCKS;
    const len = Math.min(MAX_RANGE_BLOCKS, off + n - start);
    b.writeUInt32LE(len, i * 16 + 4);
    b.writeBigUInt64LE(BigInt(start), i * 16 + 8);
  }
  return b;
}
