import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { endianness } from 'node:os';
import { Errno } from '@blockwork/core';
import {
  type BitmapHeader, type BitmapIdentity, decodeHeader, encodeHeader, encodeMutable, fileBytesFor, HEADER_BYTES,
  HEADER_FIELDS_BYTES, headerChecksum, type JobState, MAGIC, MAX_NAME_BYTES, VERSION,
} from './bitmap-header';
import { migrationError } from './errors';
import { isSyscallError, migrationNative, type NativeBitmapFile } from './native';

/** The view's u32 words map onto the file's little-endian u64 words only on a little-endian host. */
const LITTLE_ENDIAN = endianness() === 'LE';

/** What a new bitmap tracks: geometry in bytes and the two bdevs. */
export interface BitmapGeometry extends BitmapIdentity {
  /** Granule size in bytes (a power of two). */
  granuleBytes: number;
  /** Size of the source bdev in bytes. */
  sourceBytes: number;
}

/** The running kernel's boot id (empty if unreadable): a bitmap from another boot may lack unsynced marks. */
export function currentBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

function openFile(path: string, createBytes: number): NativeBitmapFile {
  try {
    return new (migrationNative().BitmapFile)(path, createBytes);
  } catch (e) {
    if (isSyscallError(e)) {
      if (e.errno === Errno.EEXIST) throw migrationError('MIGRATION_BITMAP_BUSY', `bitmap file ${path} already exists`, { errno: e.errno, cause: e });
      throw migrationError('MIGRATION_BITMAP_IO', `bitmap file ${path}: ${e.syscall} failed (errno ${e.errno})`, { errno: e.errno, cause: e });
    }
    throw e;
  }
}

/**
 * One dirty bitmap file, mapped shared: a bit per granule of the source bdev, set when the granule
 * may differ on the target. Any process mapping the file may mark and clear bits concurrently.
 */
export class DirtyBitmap {
  /** True when attach found a bitmap from another boot and marked everything dirty. */
  rebooted = false;
  /** Granules whose copy was in flight when the previous owner died, marked dirty again at attach. */
  recoveredCopies = 0;
  /** Plain-read view of the bit words (see allMarked); empty once closed. */
  private readonly words: Uint32Array;

  private constructor(
    readonly path: string,
    private readonly file: NativeBitmapFile,
    private hdr: BitmapHeader,
  ) {
    this.words = new Uint32Array(file.bitsView());
  }

  /** Creates a new bitmap file (fails if it exists) with every granule dirty: nothing is copied yet. */
  static create(path: string, g: BitmapGeometry): DirtyBitmap {
    for (const n of [g.sourceName, g.targetName]) {
      if (Buffer.byteLength(n) > MAX_NAME_BYTES) throw migrationError('MIGRATION_INVALID_PARAM', `bdev name '${n}' is longer than ${MAX_NAME_BYTES} bytes`);
    }
    if (existsSync(path)) throw migrationError('MIGRATION_BITMAP_BUSY', `bitmap file ${path} already exists`, { errno: Errno.EEXIST });
    const granuleCount = Math.ceil(g.sourceBytes / g.granuleBytes);
    // Built under a temporary name and renamed, so a crash mid-creation never leaves a half-written
    // bitmap at `path` (the mapping and fd stay valid across the rename).
    const tmp = `${path}.${process.pid}.tmp`;
    const file = openFile(tmp, fileBytesFor(granuleCount));
    try {
      file.initMutex();
      const head = encodeHeader({ ...g, granuleCount, generation: 1, state: 'bulk', bootId: currentBootId() });
      file.configure(g.granuleBytes, granuleCount);
      file.setRange(0, granuleCount);
      file.writeHeader(0, head, true);
      file.msync();
      renameSync(tmp, path);
      return new DirtyBitmap(path, file, decodeHeader(head));
    } catch (e) {
      file.close();
      rmSync(tmp, { force: true });
      throw e;
    }
  }

  /**
   * Opens an existing bitmap and validates it: MIGRATION_BITMAP_CORRUPT for a bad magic, version,
   * checksum or size; with `expect`, MIGRATION_BITMAP_MISMATCH naming the field that differs
   * (`granuleBytes` 0 accepts the file's). Bumps the generation unless `inspectOnly`.
   */
  static attach(path: string, expect?: BitmapGeometry, inspectOnly = false): DirtyBitmap {
    const file = openFile(path, 0);
    try {
      const hdr = DirtyBitmap.validate(path, file);
      if (expect) DirtyBitmap.compare(path, hdr, expect);
      const bm = new DirtyBitmap(path, file, hdr);
      if (!inspectOnly) bm.bumpGeneration();
      return bm;
    } catch (e) {
      file.close();
      throw e;
    }
  }

  private static validate(path: string, file: NativeBitmapFile): BitmapHeader {
    const corrupt = (what: string) => migrationError('MIGRATION_BITMAP_CORRUPT', `bitmap file ${path}: ${what}`);
    if (file.fileBytes < HEADER_BYTES) throw corrupt(`${file.fileBytes} bytes, smaller than the ${HEADER_BYTES}-byte header`);
    const raw = file.readHeader(HEADER_FIELDS_BYTES);
    const h = decodeHeader(raw);
    if (h.magic !== MAGIC) throw corrupt(`bad magic ${JSON.stringify(h.magic)} (expected ${JSON.stringify(MAGIC)})`);
    if (h.version !== VERSION) throw corrupt(`unsupported version ${h.version} (this build reads ${VERSION})`);
    if (h.checksum !== headerChecksum(raw)) throw corrupt(`header checksum mismatch (stored ${h.checksum}, computed ${headerChecksum(raw)})`);
    if (h.headerBytes !== HEADER_BYTES || h.granuleBytes <= 0 || h.granuleCount !== Math.ceil(h.sourceBytes / h.granuleBytes)) {
      throw corrupt(`inconsistent geometry (granule ${h.granuleBytes} B, size ${h.sourceBytes} B, ${h.granuleCount} granules)`);
    }
    if (file.fileBytes < fileBytesFor(h.granuleCount) || !file.configure(h.granuleBytes, h.granuleCount)) {
      throw corrupt(`file is ${file.fileBytes} bytes, ${fileBytesFor(h.granuleCount)} needed for ${h.granuleCount} granules`);
    }
    return h;
  }

  private static compare(path: string, h: BitmapHeader, e: BitmapGeometry): void {
    const diffs: string[] = [];
    const check = (field: string, have: string | number, want: string | number) => {
      if (have !== want) diffs.push(`${field} is ${JSON.stringify(have)} in the file, ${JSON.stringify(want)} now`);
    };
    if (e.granuleBytes > 0) check('granularity_bytes', h.granuleBytes, e.granuleBytes);
    check('source size (bytes)', h.sourceBytes, e.sourceBytes);
    check('source_bdev', h.sourceName, e.sourceName);
    check('source uuid', h.sourceUuid, e.sourceUuid);
    check('target_bdev', h.targetName, e.targetName);
    check('target uuid', h.targetUuid, e.targetUuid);
    if (diffs.length > 0) throw migrationError('MIGRATION_BITMAP_MISMATCH', `bitmap file ${path} does not match this migration: ${diffs.join('; ')}`);
  }

  private bumpGeneration(): void {
    this.recoveredCopies = this.file.recoverSlots();
    const boot = currentBootId();
    if (this.hdr.bootId !== boot) {
      // No process of an earlier boot can hold the mutex, and marks not msync'ed before a host
      // crash are gone: re-initialise the mutex and treat every granule as dirty.
      this.file.initMutex();
      this.file.setRange(0, this.hdr.granuleCount);
      this.rebooted = true;
    }
    this.writeMutable(this.hdr.generation + 1, this.hdr.state === 'unknown' ? 'dirty' : this.hdr.state, boot);
  }

  private writeMutable(generation: number, state: JobState, bootId: string): void {
    const m = encodeMutable(generation, state, bootId);
    this.file.writeHeader(m.offset, m.data, true);
    this.hdr = { ...this.hdr, generation, state, bootId };
  }

  /** The header as last read or written by this process. */
  get header(): Readonly<BitmapHeader> {
    return this.hdr;
  }

  /** A fresh, consistent read of the header from the shared mapping (under the mutex). */
  readHeader(): BitmapHeader {
    return decodeHeader(this.file.readHeader(HEADER_FIELDS_BYTES, true));
  }

  get granuleBytes(): number {
    return this.hdr.granuleBytes;
  }

  get granuleCount(): number {
    return this.hdr.granuleCount;
  }

  /** Records the job's phase in the header and msyncs, so an inspection or a restart sees it. */
  setState(state: JobState): void {
    this.writeMutable(this.hdr.generation, state, this.hdr.bootId);
    this.sync();
  }

  /** Marks the granules covering bytes [offset, offset+length) dirty (hot path). Returns how many. */
  markBytes(offset: number, length: number): number {
    return this.file.markBytes(offset, length);
  }

  /**
   * Whether every granule covering bytes [offset, offset+length) is dirty, by plain reads of the
   * mapping (no native call, no atomic). A true answer stays true until this process's mirror clears
   * a bit: only the job owner (flock) clears, other processes only set. False when closed or empty.
   * Hot path: callers mark with markBytes only when this is false.
   */
  allMarked(offset: number, length: number): boolean {
    const g = this.hdr.granuleBytes;
    const last = Math.floor((offset + length - 1) / g);
    const w = this.words;
    if (!LITTLE_ENDIAN || !(length > 0) || last >= this.hdr.granuleCount) return false;
    for (let i = Math.floor(offset / g); i <= last; i++) {
      if (((w[i >>> 5] >>> (i & 31)) & 1) === 0) return false;
    }
    return true;
  }

  setRange(first: number, count: number): void {
    this.file.setRange(first, count);
  }

  /** Test-and-clear of one granule: true if it was dirty. */
  clear(granule: number): boolean {
    return this.file.clearBit(granule);
  }

  /**
   * Clears a granule's bit before its copy while recording it in copy slot `slot` (< 64), so a crash
   * before `copied(slot)` leaves it dirty for the next attach. True if it was dirty (else the slot stays free).
   */
  clearForCopy(granule: number, slot: number): boolean {
    this.file.slotSet(slot, granule + 1);
    if (this.file.clearBit(granule)) return true;
    this.file.slotSet(slot, 0);
    return false;
  }

  /** Frees copy slot `slot`: the granule's data is on the target. */
  copied(slot: number): void {
    this.file.slotSet(slot, 0);
  }

  set(granule: number): boolean {
    return this.file.setBit(granule);
  }

  test(granule: number): boolean {
    return this.file.testBit(granule);
  }

  /** First dirty granule at or after `from`, or -1. */
  findNextDirty(from: number): number {
    return from >= this.hdr.granuleCount ? -1 : this.file.findNextSet(from);
  }

  dirtyCount(): number {
    return this.file.countSet();
  }

  /** msync of the whole file (header and bits); throws MIGRATION_BITMAP_IO on failure. */
  sync(): void {
    const rc = this.file.msync();
    if (rc < 0 && rc !== -Errno.EBADF) throw migrationError('MIGRATION_BITMAP_IO', `msync of bitmap file ${this.path} failed (errno ${-rc})`, { errno: -rc });
  }

  /** Takes the file's exclusive flock (one job per bitmap across processes); MIGRATION_BITMAP_BUSY if held. */
  lockExclusive(): void {
    const rc = this.file.tryLockFile();
    if (rc < 0) throw migrationError('MIGRATION_BITMAP_BUSY', `bitmap file ${this.path} is in use by another job or process`, { errno: rc === -Errno.EWOULDBLOCK ? Errno.EBUSY : -rc });
  }

  /** The raw mapping, for tests and inspection tools that drive the mutex themselves. */
  get native(): NativeBitmapFile {
    return this.file;
  }

  /** Unmaps and closes; bit calls afterwards are no-ops (markBytes returns 0). */
  close(): void {
    this.file.close();
  }
}
