import { Errno, type IoCallback, type IoChannel } from '@blockwork/core';
import { type DirtyMarker, type GuestMemory, u64ToNumber } from './guest-memory';
import type { DescChain } from './virtqueue';

/** virtio-blk request types (virtio 1.x §5.2.6). */
export const BlkType = { IN: 0, OUT: 1, FLUSH: 4, GET_ID: 8, DISCARD: 11, WRITE_ZEROES: 13 } as const;
/** virtio-blk status byte values. */
export const BlkStatus = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;
/** Bytes of the GET_ID answer (VIRTIO_BLK_ID_BYTES). */
export const BLK_ID_BYTES = 20;
/** The request header {type u32, reserved u32, sector u64}. */
export const BLK_HEADER_BYTES = 16;
/** One discard / write-zeroes segment {sector u64, num_sectors u32, flags u32}. */
export const BLK_SEGMENT_BYTES = 16;
const WRITE_ZEROES_FLAG_UNMAP = 1;
const SECTOR = 512;

/** What a parsed request asks the bdev to do. */
export const BlkOp = { NONE: 0, READ: 1, WRITE: 2, FLUSH: 3, UNMAP: 4, WRITE_ZEROES: 5 } as const;

/** `parseBlkRequest` result besides a BlkStatus: no status byte found (complete with used len 0). */
export const PARSE_NO_STATUS = -1;
/** `parseBlkRequest` result: submit `req.op` to the bdev. */
export const PARSE_SUBMIT = 256;

/** What the parser needs to know about the exported bdev. */
export interface BlkDevice {
  /** Logical block size of the bdev, bytes (multiple of 512). */
  blockSize: number;
  /** Size in blocks. */
  numBlocks: number;
  readonly: boolean;
  flush: boolean;
  unmap: boolean;
  writeZeroes: boolean;
  /** GET_ID answer, up to 20 bytes (shorter is NUL-padded). */
  serial: Uint8Array;
}

/**
 * One request in flight: pooled per queue and reused after its completion, so the hot path
 * allocates nothing but the data views themselves. `owner` is the queue that popped it.
 */
export class BlkRequest {
  head = 0;
  op: number = BlkOp.NONE;
  offsetBlocks = 0;
  numBlocks = 0;
  /** Data buffers: views of guest memory (zero copy), valid while the memory table is. */
  readonly iovs: Uint8Array[] = [];
  /** Region bytes holding the status byte, and its offset there (null: no status byte). */
  statusBytes: Uint8Array | null = null;
  statusOffset = 0;
  /** Guest physical address of the status byte, for the dirty log. */
  statusGpa = 0;
  /** The memory the request was parsed against (its `dirty` says whether to log our stores). */
  mem: GuestMemory | null = null;
  /** Bytes written into the chain's device-writable buffers, reported in the used element. */
  usedLen = 0;

  constructor(readonly owner: unknown) {}

  /**
   * Writes the status byte (if the chain had one). This is the last store into the request's
   * buffers (a read's data landed before its completion), so with dirty logging on it also marks
   * what the device wrote: the read's data buffers and the status byte. Before the used element.
   */
  setStatus(status: number): void {
    if (this.statusBytes === null) return;
    this.statusBytes[this.statusOffset] = status;
    const d = this.mem?.dirty ?? null;
    if (d !== null) this.logStores(d);
  }

  private logStores(d: DirtyMarker): void {
    // A failed read may have filled part of its buffers: mark them all.
    if (this.op === BlkOp.READ) markViews(d, this.mem!, this.iovs);
    d.mark(this.statusGpa, 1);
  }
}

const scratch = new Uint8Array(BLK_HEADER_BYTES);
const scratchView = new DataView(scratch.buffer);

/**
 * Parses a walked chain into `req`: header (exactly 16 device-readable bytes at the start,
 * possibly split over descriptors), data (the bytes between header and status byte, as views of
 * guest memory), status (the last byte, which must be device-writable). Validates directions,
 * lengths (multiples of 512 and of the block size) and the sector range. Never throws.
 *
 * Returns PARSE_SUBMIT (then `req.op`, offset, length and iovs are set), a BlkStatus to complete
 * with at once (GET_ID is answered here), or PARSE_NO_STATUS for a chain without a status byte.
 */
export function parseBlkRequest(chain: DescChain, mem: GuestMemory, dev: BlkDevice, req: BlkRequest): number {
  req.op = BlkOp.NONE;
  req.iovs.length = 0;
  req.statusBytes = null;
  req.usedLen = 0;
  const n = chain.count;
  const last = n - 1;
  if (n === 0 || chain.writable[last] === 0) return PARSE_NO_STATUS;
  const sr = mem.regions[chain.region[last]];
  req.mem = mem;
  req.statusBytes = sr.bytes;
  req.statusOffset = chain.offset[last] + chain.len[last] - 1;
  req.statusGpa = sr.guestPhysAddr + req.statusOffset;
  req.usedLen = 1;
  // Header: copy 16 readable bytes into the scratch buffer.
  let i = 0;
  let pos = 0;
  let got = 0;
  while (got < BLK_HEADER_BYTES) {
    if (i >= n || chain.writable[i] !== 0) return BlkStatus.IOERR;
    const avail = chain.len[i] - (i === last ? 1 : 0) - pos;
    const take = Math.min(avail, BLK_HEADER_BYTES - got);
    const b = mem.regions[chain.region[i]].bytes;
    const from = chain.offset[i] + pos;
    for (let j = 0; j < take; j++) scratch[got + j] = b[from + j];
    got += take;
    pos += take;
    if (pos >= chain.len[i] - (i === last ? 1 : 0)) {
      i++;
      pos = 0;
    }
  }
  const type = scratchView.getUint32(0, true);
  const sector = u64ToNumber(scratchView, 8);
  switch (type) {
    case BlkType.IN:
    case BlkType.OUT:
      return parseReadWrite(chain, mem, dev, req, i, pos, type === BlkType.IN, sector);
    case BlkType.FLUSH:
      if (!dev.flush) return BlkStatus.UNSUPP;
      req.op = BlkOp.FLUSH;
      req.offsetBlocks = 0;
      req.numBlocks = dev.numBlocks;
      return PARSE_SUBMIT;
    case BlkType.GET_ID:
      return getId(chain, mem, dev, req, i, pos);
    case BlkType.DISCARD:
    case BlkType.WRITE_ZEROES:
      return parseSegment(chain, mem, dev, req, i, pos, type === BlkType.DISCARD);
    default:
      return BlkStatus.UNSUPP;
  }
}

/** Collects the data views from (i, pos) up to the status byte; -1 on a wrong-direction buffer. */
function collectData(chain: DescChain, mem: GuestMemory, req: BlkRequest, i: number, pos: number, writable: boolean): number {
  const n = chain.count;
  const last = n - 1;
  let total = 0;
  for (; i < n; i++, pos = 0) {
    const end = chain.len[i] - (i === last ? 1 : 0);
    const len = end - pos;
    if (len <= 0) continue;
    if ((chain.writable[i] !== 0) !== writable) return -1;
    const from = chain.offset[i] + pos;
    req.iovs.push(mem.regions[chain.region[i]].bytes.subarray(from, from + len));
    total += len;
  }
  return total;
}

function parseReadWrite(chain: DescChain, mem: GuestMemory, dev: BlkDevice, req: BlkRequest, i: number, pos: number, read: boolean, sector: number): number {
  if (!read && dev.readonly) return BlkStatus.IOERR;
  const total = collectData(chain, mem, req, i, pos, read);
  const bs = dev.blockSize;
  if (total <= 0 || total % SECTOR !== 0 || total % bs !== 0 || sector < 0) return BlkStatus.IOERR;
  const byteOff = sector * SECTOR;
  if (byteOff % bs !== 0) return BlkStatus.IOERR;
  const offsetBlocks = byteOff / bs;
  const numBlocks = total / bs;
  if (offsetBlocks + numBlocks > dev.numBlocks) return BlkStatus.IOERR;
  req.op = read ? BlkOp.READ : BlkOp.WRITE;
  req.offsetBlocks = offsetBlocks;
  req.numBlocks = numBlocks;
  if (read) req.usedLen = total + 1;
  return PARSE_SUBMIT;
}

function getId(chain: DescChain, mem: GuestMemory, dev: BlkDevice, req: BlkRequest, i: number, pos: number): number {
  const total = collectData(chain, mem, req, i, pos, true);
  if (total < 0) return BlkStatus.IOERR;
  let written = 0;
  for (const v of req.iovs) {
    const k = Math.min(v.length, BLK_ID_BYTES - written);
    for (let j = 0; j < k; j++) v[j] = written + j < dev.serial.length ? dev.serial[written + j] : 0;
    written += k;
    if (written >= BLK_ID_BYTES) break;
  }
  if (mem.dirty !== null) markViews(mem.dirty, mem, req.iovs, written);
  req.iovs.length = 0;
  req.usedLen = written + 1;
  return BlkStatus.OK;
}

function parseSegment(chain: DescChain, mem: GuestMemory, dev: BlkDevice, req: BlkRequest, i: number, pos: number, discard: boolean): number {
  if (dev.readonly) return BlkStatus.IOERR;
  if (discard ? !dev.unmap : !dev.writeZeroes) return BlkStatus.UNSUPP;
  const total = collectData(chain, mem, req, i, pos, false);
  if (total <= 0 || total % BLK_SEGMENT_BYTES !== 0) return BlkStatus.IOERR;
  if (total > BLK_SEGMENT_BYTES) return BlkStatus.UNSUPP; // max_discard_seg = max_write_zeroes_seg = 1
  let got = 0;
  for (const v of req.iovs) {
    scratch.set(v, got);
    got += v.length;
  }
  req.iovs.length = 0;
  const sector = u64ToNumber(scratchView, 0);
  const num = scratchView.getUint32(8, true);
  const flags = scratchView.getUint32(12, true);
  // Discard has no flags; write-zeroes knows only "may unmap". Unknown bits are unsupported.
  if ((flags & ~(discard ? 0 : WRITE_ZEROES_FLAG_UNMAP)) !== 0) return BlkStatus.UNSUPP;
  const bs = dev.blockSize;
  if (sector < 0 || num === 0 || (sector * SECTOR) % bs !== 0 || (num * SECTOR) % bs !== 0) return BlkStatus.IOERR;
  const offsetBlocks = (sector * SECTOR) / bs;
  const numBlocks = (num * SECTOR) / bs;
  if (offsetBlocks + numBlocks > dev.numBlocks) return BlkStatus.IOERR;
  req.op = discard ? BlkOp.UNMAP : BlkOp.WRITE_ZEROES;
  req.offsetBlocks = offsetBlocks;
  req.numBlocks = numBlocks;
  return PARSE_SUBMIT;
}

/** Marks the guest pages of `views` (data buffers in guest memory), at most `limit` bytes in all. */
function markViews(d: DirtyMarker, mem: GuestMemory, views: readonly Uint8Array[], limit = Infinity): void {
  for (const v of views) {
    if (limit <= 0) return;
    const len = Math.min(v.length, limit);
    const gpa = mem.gpaOfView(v);
    if (gpa >= 0) d.mark(gpa, len);
    limit -= len;
  }
}

/** Submits a parsed request to the bdev; `cb(status, req)` runs exactly once (never synchronously). */
export function submitBlkRequest(req: BlkRequest, ch: IoChannel, cb: IoCallback): void {
  switch (req.op) {
    case BlkOp.READ:
      ch.read(req.iovs, req.offsetBlocks, req.numBlocks, cb, req);
      return;
    case BlkOp.WRITE:
      ch.write(req.iovs, req.offsetBlocks, req.numBlocks, cb, req);
      return;
    case BlkOp.FLUSH:
      ch.flush(req.offsetBlocks, req.numBlocks, cb, req);
      return;
    case BlkOp.UNMAP:
      ch.unmap(req.offsetBlocks, req.numBlocks, cb, req);
      return;
    default:
      ch.writeZeroes(req.offsetBlocks, req.numBlocks, cb, req);
  }
}

/** The status byte for a bdev completion status (0 or negative errno). */
export function blkStatusOf(status: number): number {
  if (status === 0) return BlkStatus.OK;
  return status === -Errno.ENOTSUP ? BlkStatus.UNSUPP : BlkStatus.IOERR;
}
