import { ringOrder } from '@blockwork/vhost-user';
import type { QueueLayout } from './memory-layout';
import type { VirtQueue } from './virtqueue';

/** A descriptor as a test writes it; addresses are guest addresses (= memfd offsets), any u64. */
export interface RawDesc {
  addr: bigint | number;
  len: number;
  flags: number;
  next: number;
}

/**
 * Hostile-test access to one queue's rings and memory, for exercising a vhost-user-blk target:
 * write any descriptor (outside memory, loops, over-long chains, bad header lengths, unknown request
 * types), put any head in the avail ring, kick, and watch the used ring. Bypasses VirtQueue's
 * bookkeeping, so never use it on a queue that also carries bdev I/O.
 */
export class RawQueue {
  private readonly mem8: Uint8Array;
  private readonly dv: DataView;
  private readonly avail16: Uint16Array;
  private readonly used16: Uint16Array;
  private availIdx = 0;

  constructor(private readonly vq: VirtQueue, buffer: ArrayBuffer) {
    const L = vq.layout;
    this.mem8 = new Uint8Array(buffer);
    this.dv = new DataView(buffer);
    this.avail16 = new Uint16Array(buffer, L.availOff, 3 + L.size);
    this.used16 = new Uint16Array(buffer, L.usedOff, 3 + 4 * L.size);
  }

  get layout(): QueueLayout {
    return this.vq.layout;
  }

  /** Free scratch space for headers, data and status bytes: the queue's request-header area (64 × size bytes). */
  get scratch(): { addr: number; size: number } {
    return { addr: this.layout.hdrOff, size: 64 * this.layout.size };
  }

  writeDesc(i: number, d: RawDesc): void {
    const o = this.layout.descOff + 16 * i;
    this.dv.setBigUint64(o, BigInt(d.addr), true);
    this.dv.setUint32(o + 8, d.len, true);
    this.dv.setUint16(o + 12, d.flags, true);
    this.dv.setUint16(o + 14, d.next, true);
  }

  /** Writes a virtio-blk request header {type, reserved 0, sector} at guest address `addr`. */
  writeHeader(addr: number, type: number, sector: bigint | number): void {
    this.dv.setUint32(addr, type, true);
    this.dv.setUint32(addr + 4, 0, true);
    this.dv.setBigUint64(addr + 8, BigInt(sector), true);
  }

  write(addr: number, bytes: Uint8Array): void {
    this.mem8.set(bytes, addr);
  }

  read(addr: number, len: number): Buffer {
    return Buffer.from(this.mem8.subarray(addr, addr + len));
  }

  /** Appends heads to the avail ring (any values, even out of range) and publishes the new index. */
  pushAvail(heads: number[]): void {
    for (const h of heads) {
      this.avail16[2 + (this.availIdx % this.layout.size)] = h;
      this.availIdx = (this.availIdx + 1) & 0xffff;
    }
    ringOrder.storeFence16(this.avail16, 1, this.availIdx);
  }

  /** Publishes an arbitrary avail index (e.g. far ahead of the entries written). */
  setAvailIdx(idx: number): void {
    this.availIdx = idx & 0xffff;
    ringOrder.storeFence16(this.avail16, 1, this.availIdx);
  }

  kick(): void {
    this.vq.kick.signal();
  }

  usedIdx(): number {
    return ringOrder.loadAcquire16(this.used16, 1);
  }

  /** Used element i (ring position, not wrapped by the caller). */
  usedElem(i: number): { id: number; len: number } {
    const o = this.layout.usedOff + 4 + 8 * (i % this.layout.size);
    return { id: this.dv.getUint32(o, true), len: this.dv.getUint32(o + 4, true) };
  }

  /** Polls until used.idx reaches `idx` (true) or `timeoutMs` passes (false). Test helper, not a hot path. */
  async waitUsed(idx: number, timeoutMs = 2000): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.usedIdx() === (idx & 0xffff)) return true;
      await new Promise((r) => setTimeout(r, 2));
    }
    return false;
  }
}
