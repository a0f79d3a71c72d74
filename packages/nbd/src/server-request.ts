import { IoType } from '@blockwork/core';
import type { GateWaiter, NbdExport } from './nbd-export';
import {
  NBD_CMD_FLAG_FUA, NBD_CMD_FLUSH, NBD_CMD_READ, NBD_CMD_TRIM, NBD_CMD_WRITE, type NbdRequest, nbdErrorOf, SIMPLE_REPLY_SIZE,
} from './protocol';

/** The part of a connection a request talks back to. */
export interface RequestOwner {
  reply(handleHi: number, handleLo: number, error: number, data: Buffer | null): void;
  finished(): void;
}

/** One piece of a write: whole blocks written as they are, or one block updated by read-modify-write. */
interface Segment {
  partial: boolean;
  blk: number;
  nBlocks: number;
  /** Byte offset inside the block (partial) and bytes covered. */
  inBlk: number;
  len: number;
  /** Offset of the piece in the request's payload. */
  srcOff: number;
}

/** One long-lived completion function for every bdev I/O a request submits (no closure per I/O). */
function onIo(status: number, arg: unknown): void {
  (arg as ServerRequest).step(status);
}

/**
 * One NBD request mapped onto bdev I/O. Aligned requests go straight through; unaligned READ reads
 * the covering blocks into a bounce buffer; unaligned WRITE / WRITE_ZEROES update the partial
 * blocks by read-modify-write under the export's exclusive gate. FUA → a flush of the range after
 * the write succeeds.
 */
export class ServerRequest implements GateWaiter {
  private readonly bs: number;
  private exclusive = false;
  private gated = false;
  private segs: Segment[] | null = null;
  private seg = 0;
  /** 0 = main I/O, 1 = read half of a read-modify-write, 2 = FUA flush. */
  private phase = 0;
  private buf: Buffer | null = null;
  /** Whether an unaligned READ went through a bounce buffer of whole blocks. */
  private bounced = false;

  constructor(
    private readonly owner: RequestOwner,
    private readonly exp: NbdExport,
    private readonly r: NbdRequest,
    private readonly data: Buffer | null,
  ) {
    this.bs = exp.blockSize;
  }

  start(): void {
    const r = this.r;
    if (r.type === NBD_CMD_FLUSH) {
      if (!this.exp.supports(IoType.FLUSH)) return this.done(0);
      this.phase = 2;
      return this.exp.ch.flush(0, this.exp.desc.bdev.numBlocks, onIo, this);
    }
    if (r.length === 0) return this.done(0);
    if (r.type === NBD_CMD_READ) return this.read();
    this.exclusive = r.type !== NBD_CMD_TRIM && (r.offset % this.bs !== 0 || r.length % this.bs !== 0);
    this.gated = true;
    if (this.exp.enter(this, this.exclusive)) this.proceed();
  }

  private read(): void {
    const { offset, length } = this.r;
    const bs = this.bs;
    if (offset % bs === 0 && length % bs === 0) {
      // Header space in front of the data: the reply leaves in one buffer, no copy.
      this.buf = Buffer.allocUnsafe(SIMPLE_REPLY_SIZE + length);
      this.exp.ch.read([this.buf.subarray(SIMPLE_REPLY_SIZE)], offset / bs, length / bs, onIo, this);
      return;
    }
    const first = Math.floor(offset / bs);
    const n = Math.ceil((offset + length) / bs) - first;
    this.bounced = true;
    this.buf = Buffer.allocUnsafe(n * bs);
    this.exp.ch.read([this.buf], first, n, onIo, this);
  }

  /** Runs the mutating part once the gate admits it. */
  proceed(): void {
    const { type, offset, length } = this.r;
    const bs = this.bs;
    if (type === NBD_CMD_TRIM) {
      // TRIM is advisory: only whole blocks inside the range are unmapped.
      const first = Math.ceil(offset / bs);
      const last = Math.floor((offset + length) / bs);
      if (last <= first) return this.afterWrite();
      return this.exp.ch.unmap(first, last - first, onIo, this);
    }
    this.segs = segmentsOf(offset, length, bs);
    this.seg = 0;
    this.runSegment();
  }

  private runSegment(): void {
    const s = this.segs![this.seg];
    const ch = this.exp.ch;
    if (s.partial) {
      this.phase = 1;
      this.buf = Buffer.allocUnsafe(this.bs);
      return ch.read([this.buf], s.blk, 1, onIo, this);
    }
    this.phase = 0;
    if (this.r.type === NBD_CMD_WRITE) ch.write([this.data!.subarray(s.srcOff, s.srcOff + s.len)], s.blk, s.nBlocks, onIo, this);
    else ch.writeZeroes(s.blk, s.nBlocks, onIo, this);
  }

  /** Completion of every bdev I/O of this request. */
  step(status: number): void {
    if (status !== 0) return this.done(status);
    if (this.r.type === NBD_CMD_READ) return this.readDone();
    if (this.phase === 2) return this.done(0);
    if (this.phase === 1) {
      const s = this.segs![this.seg];
      const b = this.buf!;
      if (this.r.type === NBD_CMD_WRITE) this.data!.copy(b, s.inBlk, s.srcOff, s.srcOff + s.len);
      else b.fill(0, s.inBlk, s.inBlk + s.len);
      this.phase = 0;
      return this.exp.ch.write([b], s.blk, 1, onIo, this);
    }
    if (this.segs !== null && ++this.seg < this.segs.length) return this.runSegment();
    this.afterWrite();
  }

  private afterWrite(): void {
    const { flags, offset, length } = this.r;
    if ((flags & NBD_CMD_FLAG_FUA) === 0 || !this.exp.supports(IoType.FLUSH)) return this.done(0);
    const first = Math.floor(offset / this.bs);
    this.phase = 2;
    this.exp.ch.flush(first, Math.ceil((offset + length) / this.bs) - first, onIo, this);
  }

  private readDone(): void {
    const { offset, length } = this.r;
    let out = this.buf!;
    if (this.bounced) {
      const from = offset - Math.floor(offset / this.bs) * this.bs;
      const bounce = out;
      out = Buffer.allocUnsafe(SIMPLE_REPLY_SIZE + length);
      bounce.copy(out, SIMPLE_REPLY_SIZE, from, from + length);
    }
    this.done(0, out);
  }

  private done(status: number, data: Buffer | null = null): void {
    if (this.gated) {
      this.gated = false;
      this.exp.leave(this.exclusive);
    }
    const r = this.r;
    this.buf = null;
    this.owner.reply(r.handleHi, r.handleLo, nbdErrorOf(status), data);
    this.owner.finished();
  }
}

/** Splits a byte range into partial head block, whole middle blocks, partial tail block (≤ 3 pieces). */
export function segmentsOf(offset: number, length: number, bs: number): Segment[] {
  const segs: Segment[] = [];
  const end = offset + length;
  let pos = offset;
  while (pos < end) {
    const blk = Math.floor(pos / bs);
    const inBlk = pos - blk * bs;
    if (inBlk !== 0 || end - pos < bs) {
      const len = Math.min(bs - inBlk, end - pos);
      segs.push({ partial: true, blk, nBlocks: 1, inBlk, len, srcOff: pos - offset });
      pos += len;
    } else {
      const nBlocks = Math.floor((end - pos) / bs);
      segs.push({ partial: false, blk, nBlocks, inBlk: 0, len: nBlocks * bs, srcOff: pos - offset });
      pos += nBlocks * bs;
    }
  }
  return segs;
}
