/** Most regions a vhost-user memory table may carry (VHOST_MEMORY_BASELINE_NREGIONS). */
export const MAX_MEMORY_REGIONS = 8;

/** One region of guest memory as SET_MEM_TABLE describes it, with the bytes it is mapped to. */
export interface MemoryRegionSpec {
  /** Guest physical address of the first byte. */
  guestPhysAddr: number;
  /** Size in bytes (> 0). */
  size: number;
  /** The front end's (QEMU's) virtual address of the first byte; vring addresses use this space. */
  userAddr: number;
  /** The mapped bytes, exactly `size` long (a view of an mmap of the region's fd, or a test buffer). */
  bytes: Uint8Array;
}

/** Where the device records the guest pages it writes during live migration (the session's DirtyLog). */
export interface DirtyMarker {
  /** Marks the 4 KiB pages of guest physical [gpa, gpa + len); call after the stores. */
  mark(gpa: number, len: number): void;
}

/** A validated region: the spec plus a DataView over its bytes for ring and header reads. */
export interface MemoryRegion extends MemoryRegionSpec {
  readonly view: DataView;
}

/**
 * The guest's memory as the back end sees it: up to 8 regions, each translatable from guest
 * physical addresses (descriptor buffers) and from front-end virtual addresses (vring addresses).
 *
 * Every translation is bounds-checked: [addr, addr+len) must lie inside ONE region; otherwise the
 * lookup fails (null or -1) and nothing is touched. Addresses are plain numbers: callers reject
 * u64 values above 2^53 before asking (see `u64ToNumber`), so the arithmetic below is exact.
 */
export class GuestMemory {
  readonly regions: readonly MemoryRegion[];
  /** Offset inside the region found by the last successful `findGpa`/`findUva`. */
  offset = 0;
  /**
   * Non-null only while live-migration dirty logging is on (LOG_ALL negotiated, log mapped): every
   * store the device makes into guest memory is then marked here. Set by the session.
   */
  dirty: DirtyMarker | null = null;
  private lastHit = 0;

  private constructor(regions: MemoryRegion[]) {
    this.regions = regions;
  }

  /** Validates a memory table. Returns the memory, or a sentence saying what is wrong. */
  static create(specs: readonly MemoryRegionSpec[]): GuestMemory | string {
    if (specs.length > MAX_MEMORY_REGIONS) return `memory table has ${specs.length} regions (max ${MAX_MEMORY_REGIONS})`;
    const regions: MemoryRegion[] = [];
    for (const [i, s] of specs.entries()) {
      for (const [k, v] of [['guest_phys_addr', s.guestPhysAddr], ['memory_size', s.size], ['userspace_addr', s.userAddr]] as const) {
        if (!Number.isSafeInteger(v) || v < 0) return `region ${i}: ${k} ${v} is not a valid address or size`;
      }
      if (s.size === 0) return `region ${i}: memory_size is 0`;
      if (!Number.isSafeInteger(s.guestPhysAddr + s.size) || !Number.isSafeInteger(s.userAddr + s.size)) return `region ${i}: end overflows`;
      if (s.bytes.length !== s.size) return `region ${i}: mapping is ${s.bytes.length} bytes, region ${s.size}`;
      for (const [j, o] of regions.entries()) {
        if (overlaps(s.guestPhysAddr, s.size, o.guestPhysAddr, o.size)) return `region ${i} overlaps region ${j} in guest physical space`;
        if (overlaps(s.userAddr, s.size, o.userAddr, o.size)) return `region ${i} overlaps region ${j} in front-end address space`;
      }
      regions.push({ ...s, view: new DataView(s.bytes.buffer, s.bytes.byteOffset, s.bytes.byteLength) });
    }
    return new GuestMemory(regions);
  }

  /**
   * Region index holding guest physical [gpa, gpa+len), with `this.offset` set to gpa's offset in
   * it; -1 if no single region holds it. Allocation-free (hot path).
   */
  findGpa(gpa: number, len: number): number {
    const rs = this.regions;
    const n = rs.length;
    for (let k = 0; k < n; k++) {
      const i = (this.lastHit + k) % n;
      const r = rs[i];
      // Written as subtractions so that nothing overflows: len <= size and gpa-start <= size-len.
      if (gpa >= r.guestPhysAddr && len <= r.size && gpa - r.guestPhysAddr <= r.size - len) {
        this.lastHit = i;
        this.offset = gpa - r.guestPhysAddr;
        return i;
      }
    }
    return -1;
  }

  /** Like `findGpa` for a front-end virtual address. */
  findUva(uva: number, len: number): number {
    const rs = this.regions;
    for (let i = 0; i < rs.length; i++) {
      const r = rs[i];
      if (uva >= r.userAddr && len <= r.size && uva - r.userAddr <= r.size - len) {
        this.offset = uva - r.userAddr;
        return i;
      }
    }
    return -1;
  }

  /**
   * Guest physical address of the first byte of `v`, a view of one region's bytes (a data buffer
   * handed to the bdev), or -1. Only the dirty-log path asks, so it may loop over the regions.
   */
  gpaOfView(v: Uint8Array): number {
    for (const r of this.regions) {
      const b = r.bytes;
      if (v.buffer === b.buffer && v.byteOffset >= b.byteOffset && v.byteOffset + v.byteLength <= b.byteOffset + b.byteLength) {
        return r.guestPhysAddr + (v.byteOffset - b.byteOffset);
      }
    }
    return -1;
  }

  /** A view of guest physical [gpa, gpa+len), or null if it is not inside one region. */
  gpaToBytes(gpa: number, len: number): Uint8Array | null {
    const i = this.findGpa(gpa, len);
    return i < 0 ? null : this.regions[i].bytes.subarray(this.offset, this.offset + len);
  }

  /** A view of front-end virtual [uva, uva+len), or null if it is not inside one region. */
  uvaToBytes(uva: number, len: number): Uint8Array | null {
    const i = this.findUva(uva, len);
    return i < 0 ? null : this.regions[i].bytes.subarray(this.offset, this.offset + len);
  }
}

function overlaps(a: number, alen: number, b: number, blen: number): boolean {
  return a < b + blen && b < a + alen;
}

/** 2^53 as the high word limit: a u64 whose high 32 bits exceed this is not a safe integer. */
const MAX_SAFE_HI = 0x1fffff;

/** A little-endian u64 at `off` as a number, or -1 if it exceeds 2^53 - 1 (no region can hold it). */
export function u64ToNumber(view: DataView, off: number): number {
  const hi = view.getUint32(off + 4, true);
  if (hi > MAX_SAFE_HI) return -1;
  return hi * 0x100000000 + view.getUint32(off, true);
}
