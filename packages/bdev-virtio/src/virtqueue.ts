import { type BdevIo, type DriverDone, Errno, IoType } from '@blockwork/core';
import { EventFd, VirtioBlkType, VringDescFlags } from '@blockwork/vhost-user';
import type { QueueLayout } from './memory-layout';
import { SplitRing } from './split-ring';

/** What the queue needs to know about the device (from the negotiated features and config). */
export interface BlkLimits {
  blockSize: number;
  /** Most data descriptors per request (SEG_MAX), ≥ 1. */
  segMax: number;
  /** Most sectors per DISCARD / WRITE_ZEROES request; larger ranges are sent as several requests. */
  maxDiscardSectors: number;
  maxWriteZeroesSectors: number;
}

const EIO = -Errno.EIO;
const ENOTSUP = -Errno.ENOTSUP;
const ENODEV = -Errno.ENODEV;
const EINVAL = -Errno.EINVAL;
/** Status byte preset before submission: a device that never writes it yields -EIO, not success. */
const STATUS_UNSET = 0xff;
const TWO32 = 2 ** 32;
/** Offsets inside a request's 64-byte header slot: outhdr, discard segment, status byte. */
const SEG_OFF = 16;
const STATUS_OFF = 48;

/** Shared state of an UNMAP / WRITE_ZEROES split into several device requests. */
interface SplitCtx { pending: number; status: number }

/**
 * The driver side of one split virtqueue in the front end's shared memory. Hot path: `submit` only
 * queues; one microtask per event-loop turn turns the queue into descriptor chains, publishes the
 * avail index once (release + full fence, then reads used.flags) and kicks once. The call eventfd
 * wakes `reap` once per loop turn for however many completions arrived. Per-request state lives in
 * arrays indexed by the chain's head descriptor; nothing is allocated per I/O except the rare split
 * of an oversized UNMAP / WRITE_ZEROES.
 */
export class VirtQueue {
  readonly kick = new EventFd();
  readonly call = new EventFd();
  private readonly n: number;
  private readonly mem8: Uint8Array;
  private readonly mem32: Uint32Array;
  private readonly ring: SplitRing;
  private readonly freeChunk: Int32Array;
  private nFreeChunk: number;
  private readonly slotChunk: Int32Array;
  private readonly slotIo: Array<BdevIo | null>;
  private readonly slotDone: Array<DriverDone | null>;
  private inflight = 0;
  private qIo: BdevIo[] = [];
  private qDone: DriverDone[] = [];
  private qHead = 0;
  private flushScheduled = false;
  private readonly flushFn = (): void => this.flush();
  private refd = false;
  private closed = false;
  private drainWaiters: Array<() => void> = [];
  /** Completions whose head the device reported but we never submitted (a broken device). */
  bogusCompletions = 0;

  constructor(readonly layout: QueueLayout, private readonly memBuffer: ArrayBuffer, private readonly limits: BlkLimits) {
    const L = layout;
    this.n = L.size;
    this.mem8 = new Uint8Array(memBuffer);
    this.mem32 = new Uint32Array(memBuffer, 0, memBuffer.byteLength >>> 2);
    this.ring = new SplitRing(L, memBuffer);
    this.freeChunk = new Int32Array(L.chunkCount);
    for (let i = 0; i < L.chunkCount; i++) this.freeChunk[i] = L.chunkCount - 1 - i;
    this.nFreeChunk = L.chunkCount;
    this.slotChunk = new Int32Array(L.size).fill(-1);
    this.slotIo = new Array<BdevIo | null>(L.size).fill(null);
    this.slotDone = new Array<DriverDone | null>(L.size).fill(null);
  }

  /** Requests handed to the device and not completed, plus those waiting for ring space. */
  get outstanding(): number {
    return this.inflight + this.qIo.length - this.qHead;
  }

  /** used.idx in shared memory: after losing the back end, the SET_VRING_BASE for the next one. */
  deviceUsedIdx(): number {
    return this.ring.deviceUsedIdx();
  }

  /** Kicks the device (after a new back end took over: it may have requests to look at). */
  kickNow(): void {
    if (!this.closed) this.kick.signal();
  }

  /** Starts reaping on the call eventfd. */
  start(): void {
    this.call.watch(() => this.reap());
  }

  submit(io: BdevIo, done: DriverDone): void {
    if (this.closed) {
      queueMicrotask(() => done(io, ENODEV));
      return;
    }
    this.qIo.push(io);
    this.qDone.push(done);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushFn);
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    while (this.qHead < this.qIo.length && this.enqueue(this.qIo[this.qHead], this.qDone[this.qHead])) this.qHead++;
    if (this.qHead === this.qIo.length) {
      this.qIo.length = 0;
      this.qDone.length = 0;
      this.qHead = 0;
    }
    // One index publication and at most one kick for the whole batch.
    if (this.ring.publish()) this.kick.signal();
    if (!this.refd && this.inflight > 0) {
      this.refd = true;
      this.call.setRef(true);
    }
  }

  /** Builds the request(s) for one I/O; false when descriptors or bounce chunks are short (it stays queued). */
  private enqueue(io: BdevIo, done: DriverDone): boolean {
    io.driverCtx = null;
    const bs = this.limits.blockSize;
    switch (io.type) {
      case IoType.READ:
      case IoType.WRITE:
        return this.enqueueData(io, done, io.numBlocks * bs);
      case IoType.FLUSH:
        if (this.ring.nFree < 2) return false;
        this.chain(io, done, VirtioBlkType.FLUSH, 0, -1, 0, 0);
        return true;
      case IoType.UNMAP:
      case IoType.WRITE_ZEROES:
        return this.enqueueRange(io, done);
      default:
        queueMicrotask(() => done(io, ENOTSUP));
        return true;
    }
  }

  private enqueueData(io: BdevIo, done: DriverDone, bytes: number): boolean {
    const L = this.layout;
    const iovs = io.iovs;
    let zeroCopy = iovs.length <= this.limits.segMax;
    for (let i = 0; zeroCopy && i < iovs.length; i++) zeroCopy = iovs[i].buffer === this.memBuffer;
    const nData = zeroCopy ? iovs.length : 1;
    if (this.ring.nFree < 2 + nData) return false;
    const type = io.type === IoType.READ ? VirtioBlkType.IN : VirtioBlkType.OUT;
    const sector = (io.offsetBlocks * this.limits.blockSize) / 512;
    if (zeroCopy) {
      this.chain(io, done, type, sector, -1, 0, 0);
      return true;
    }
    if (bytes > L.chunkSize) {
      queueMicrotask(() => done(io, EINVAL));
      return true;
    }
    if (this.nFreeChunk === 0) return false;
    const chunk = this.freeChunk[--this.nFreeChunk];
    const off = L.chunkOff + chunk * L.chunkSize;
    if (type === VirtioBlkType.OUT) {
      // The caller's buffers are not in shared memory: bounce the data into the chunk.
      let pos = off;
      for (let i = 0; i < iovs.length; i++) {
        this.mem8.set(iovs[i], pos);
        pos += iovs[i].length;
      }
    }
    this.chain(io, done, type, sector, chunk, off, bytes);
    return true;
  }

  private enqueueRange(io: BdevIo, done: DriverDone): boolean {
    const type = io.type === IoType.UNMAP ? VirtioBlkType.DISCARD : VirtioBlkType.WRITE_ZEROES;
    const max = (type === VirtioBlkType.DISCARD ? this.limits.maxDiscardSectors : this.limits.maxWriteZeroesSectors) || 0x3fffff;
    const first = (io.offsetBlocks * this.limits.blockSize) / 512;
    const total = (io.numBlocks * this.limits.blockSize) / 512;
    const pieces = Math.ceil(total / max);
    if (this.ring.nFree < 3 * pieces) {
      if (3 * pieces > this.n) queueMicrotask(() => done(io, EINVAL));
      return 3 * pieces > this.n;
    }
    if (pieces > 1) io.driverCtx = { pending: pieces, status: 0 } satisfies SplitCtx;
    for (let p = 0; p < pieces; p++) {
      const s = first + p * max;
      this.chain(io, done, type, s, -1, 0, 0, Math.min(max, total - p * max));
    }
    return true;
  }

  /**
   * Writes one descriptor chain (header, data or discard segment, status) and its avail slot.
   * `segSectors` > 0 marks a DISCARD / WRITE_ZEROES segment instead of data.
   */
  private chain(io: BdevIo, done: DriverDone, type: number, sector: number, chunk: number, dataAddr: number, dataLen: number, segSectors = 0): void {
    const ring = this.ring;
    const head = ring.peekHead();
    const hdr = this.layout.hdrOff + head * 64;
    const h32 = hdr >>> 2;
    this.mem32[h32] = type;
    this.mem32[h32 + 1] = 0;
    this.mem32[h32 + 2] = sector % TWO32;
    this.mem32[h32 + 3] = Math.floor(sector / TWO32);
    this.mem8[hdr + STATUS_OFF] = STATUS_UNSET;
    let d = ring.take(hdr, 16, 0);
    let count = 1;
    const dataFlags = type === VirtioBlkType.IN ? VringDescFlags.WRITE : 0;
    if (segSectors > 0) {
      const s32 = (hdr + SEG_OFF) >>> 2;
      this.mem32[s32] = sector % TWO32;
      this.mem32[s32 + 1] = Math.floor(sector / TWO32);
      this.mem32[s32 + 2] = segSectors;
      this.mem32[s32 + 3] = 0; // flags: no unmap hint for WRITE_ZEROES (must be 0 for DISCARD)
      d = ring.link(d, hdr + SEG_OFF, 16, 0);
      count++;
    } else if (chunk >= 0) {
      d = ring.link(d, dataAddr, dataLen, dataFlags);
      count++;
    } else if (type === VirtioBlkType.IN || type === VirtioBlkType.OUT) {
      for (let i = 0; i < io.iovs.length; i++, count++) d = ring.link(d, io.iovs[i].byteOffset, io.iovs[i].length, dataFlags);
    }
    ring.link(d, hdr + STATUS_OFF, 1, VringDescFlags.WRITE);
    ring.add(head, count + 1);
    this.slotChunk[head] = chunk;
    this.slotIo[head] = io;
    this.slotDone[head] = done;
    this.inflight++;
  }

  /** Consumes the used ring up to the index the device published. One call per wakeup. */
  reap(): void {
    this.ring.beginReap();
    for (let head = this.ring.nextUsed(); head !== -1; head = this.ring.nextUsed()) {
      if (head >= this.n || this.slotIo[head] === null) {
        this.bogusCompletions++;
        continue;
      }
      this.complete(head);
    }
    if (this.qHead < this.qIo.length) this.flush();
    if (this.inflight === 0 && this.refd) {
      this.refd = false;
      this.call.setRef(false);
    }
    if (this.outstanding === 0 && this.drainWaiters.length > 0) for (const w of this.drainWaiters.splice(0)) w();
  }

  private complete(head: number): void {
    const L = this.layout;
    const st = this.mem8[L.hdrOff + head * 64 + STATUS_OFF];
    let status = st === 0 ? 0 : st === 2 ? ENOTSUP : EIO;
    const io = this.slotIo[head]!;
    const done = this.slotDone[head]!;
    const chunk = this.slotChunk[head];
    if (chunk >= 0) {
      if (status === 0 && io.type === IoType.READ) {
        let pos = L.chunkOff + chunk * L.chunkSize;
        for (let i = 0; i < io.iovs.length; i++) {
          const len = io.iovs[i].length;
          io.iovs[i].set(this.mem8.subarray(pos, pos + len));
          pos += len;
        }
      }
      this.freeChunk[this.nFreeChunk++] = chunk;
    }
    this.ring.free(head);
    this.slotIo[head] = null;
    this.slotDone[head] = null;
    this.slotChunk[head] = -1;
    this.inflight--;
    const split = io.driverCtx as SplitCtx | null;
    if (split !== null) {
      if (status !== 0 && split.status === 0) split.status = status;
      if (--split.pending > 0) return;
      status = split.status;
      io.driverCtx = null;
    }
    done(io, status);
  }

  /** Resolves when nothing is queued or in flight. */
  drain(): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Fails queued I/O with -ENODEV and stops; in-flight requests are abandoned (the device is gone). */
  close(): void {
    this.closed = true;
    const ios = this.qIo.slice(this.qHead);
    const dones = this.qDone.slice(this.qHead);
    this.qIo.length = 0;
    this.qDone.length = 0;
    this.qHead = 0;
    const seen = new Set<BdevIo>(); // a split UNMAP holds several heads but completes once
    for (let i = 0; i < this.n; i++) {
      const io = this.slotIo[i];
      if (io !== null && !seen.has(io)) {
        seen.add(io);
        io.driverCtx = null;
        ios.push(io);
        dones.push(this.slotDone[i]!);
      }
      this.slotIo[i] = null;
    }
    this.inflight = 0;
    this.call.close();
    this.kick.close();
    for (let i = 0; i < ios.length; i++) dones[i](ios[i], ENODEV);
    for (const w of this.drainWaiters.splice(0)) w();
  }
}
