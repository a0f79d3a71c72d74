/**
 * The dirty bitmap file's header (docs/migration.md has the table). Little-endian, 4096 bytes so the
 * bit words start page aligned; the robust mutex lives at byte 512 and the 64 copy slots (u64
 * granule+1 being copied, 0 = free) at byte 1024 (native/bitmap-addon.cc).
 */
export const HEADER_BYTES = 4096;
/** Bytes of the header that carry fields (the rest, from 512, is the mutex and padding). */
export const HEADER_FIELDS_BYTES = 512;
export const MAGIC = 'BWDIRTY\0';
export const VERSION = 1;

const OFF = {
  magic: 0, version: 8, headerBytes: 12, granuleBytes: 16, sourceBytes: 24, granuleCount: 32,
  generation: 40, state: 48, flags: 52, bootId: 56, sourceName: 96, targetName: 160,
  sourceUuid: 224, targetUuid: 264, checksum: 304,
} as const;
const NAME_BYTES = 64;
const UUID_BYTES = 40;
const BOOT_ID_BYTES = 40;

/** Job state kept in the header (its phase when last written). */
export const JOB_STATES = ['bulk', 'dirty', 'converged', 'completing', 'completed', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** Which source and target the bitmap tracks. Names ≤ 63 UTF-8 bytes. */
export interface BitmapIdentity {
  sourceName: string;
  sourceUuid: string;
  targetName: string;
  targetUuid: string;
}

/** Every header field, decoded. Sizes in bytes. */
export interface BitmapHeader extends BitmapIdentity {
  magic: string;
  version: number;
  headerBytes: number;
  granuleBytes: number;
  sourceBytes: number;
  granuleCount: number;
  /** Bumped each time a job attaches (creation = 1). */
  generation: number;
  state: JobState | 'unknown';
  /** /proc/sys/kernel/random/boot_id when last attached: another boot means the mutex and unsynced marks are stale. */
  bootId: string;
  checksum: number;
}

/** The bitmap file's size for `granules` bits: header plus 64-bit words. */
export function fileBytesFor(granules: number): number {
  return HEADER_BYTES + Math.ceil(granules / 64) * 8;
}

function putString(b: Buffer, off: number, max: number, s: string): void {
  b.fill(0, off, off + max);
  b.write(s, off, max - 1, 'utf8');
}

function getString(b: Buffer, off: number, max: number): string {
  const raw = b.subarray(off, off + max);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? max : end).toString('utf8');
}

/** FNV-1a over the fields that never change after creation (not generation, state, boot id). */
export function headerChecksum(b: Buffer): number {
  let h = 0x811c9dc5;
  const ranges: Array<[number, number]> = [[0, OFF.generation], [OFF.sourceName, OFF.checksum]];
  for (const [from, to] of ranges) {
    for (let i = from; i < to; i++) h = Math.imul(h ^ b[i], 0x01000193) >>> 0;
  }
  return h;
}

/** Encodes the fields region (first 512 bytes) of a new header; the checksum is computed here. */
export function encodeHeader(h: Omit<BitmapHeader, 'magic' | 'version' | 'headerBytes' | 'checksum'>): Buffer {
  const b = Buffer.alloc(HEADER_FIELDS_BYTES);
  b.write(MAGIC, OFF.magic, 8, 'latin1');
  b.writeUInt32LE(VERSION, OFF.version);
  b.writeUInt32LE(HEADER_BYTES, OFF.headerBytes);
  b.writeBigUInt64LE(BigInt(h.granuleBytes), OFF.granuleBytes);
  b.writeBigUInt64LE(BigInt(h.sourceBytes), OFF.sourceBytes);
  b.writeBigUInt64LE(BigInt(h.granuleCount), OFF.granuleCount);
  b.writeBigUInt64LE(BigInt(h.generation), OFF.generation);
  b.writeUInt32LE(Math.max(0, JOB_STATES.indexOf(h.state as JobState)), OFF.state);
  putString(b, OFF.bootId, BOOT_ID_BYTES, h.bootId);
  putString(b, OFF.sourceName, NAME_BYTES, h.sourceName);
  putString(b, OFF.targetName, NAME_BYTES, h.targetName);
  putString(b, OFF.sourceUuid, UUID_BYTES, h.sourceUuid);
  putString(b, OFF.targetUuid, UUID_BYTES, h.targetUuid);
  b.writeUInt32LE(headerChecksum(b), OFF.checksum);
  return b;
}

export function decodeHeader(b: Buffer): BitmapHeader {
  return {
    magic: b.toString('latin1', OFF.magic, OFF.magic + 8),
    version: b.readUInt32LE(OFF.version),
    headerBytes: b.readUInt32LE(OFF.headerBytes),
    granuleBytes: Number(b.readBigUInt64LE(OFF.granuleBytes)),
    sourceBytes: Number(b.readBigUInt64LE(OFF.sourceBytes)),
    granuleCount: Number(b.readBigUInt64LE(OFF.granuleCount)),
    generation: Number(b.readBigUInt64LE(OFF.generation)),
    state: JOB_STATES[b.readUInt32LE(OFF.state)] ?? 'unknown',
    bootId: getString(b, OFF.bootId, BOOT_ID_BYTES),
    sourceName: getString(b, OFF.sourceName, NAME_BYTES),
    targetName: getString(b, OFF.targetName, NAME_BYTES),
    sourceUuid: getString(b, OFF.sourceUuid, UUID_BYTES),
    targetUuid: getString(b, OFF.targetUuid, UUID_BYTES),
    checksum: b.readUInt32LE(OFF.checksum),
  };
}

/** The mutable fields, as one write: generation, state and boot id (bytes 40..96). */
export function encodeMutable(generation: number, state: JobState, bootId: string): { offset: number; data: Buffer } {
  const b = Buffer.alloc(OFF.sourceName - OFF.generation);
  b.writeBigUInt64LE(BigInt(generation), 0);
  b.writeUInt32LE(JOB_STATES.indexOf(state), OFF.state - OFF.generation);
  putString(b, OFF.bootId - OFF.generation, BOOT_ID_BYTES, bootId);
  return { offset: OFF.generation, data: b };
}

/** Longest bdev name the header holds, in UTF-8 bytes. */
export const MAX_NAME_BYTES = NAME_BYTES - 1;
/** Byte offset of the magic (for tests that corrupt it). */
export const MAGIC_OFFSET = OFF.magic;
