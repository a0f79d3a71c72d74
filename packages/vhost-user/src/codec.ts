/**
 * Encoders and decoders for vhost-user payload structs (little-endian, as the protocol is on every
 * host it runs on). Decoders check the payload size and fields and throw VHOST_USER_PAYLOAD naming
 * the request and what is wrong; u64 fields are bigint so nothing a peer sends is rounded.
 */
import { vhostUserError } from './errors';
import { requestName, VHOST_USER_MAX_CONFIG_SIZE, VHOST_USER_MAX_MEM_REGIONS } from './protocol';

export interface VringState { index: number; num: number }
export interface VringAddr { index: number; flags: number; desc: bigint; used: bigint; avail: bigint; log: bigint }
export interface MemoryRegion { guestPhysAddr: bigint; memorySize: bigint; userspaceAddr: bigint; mmapOffset: bigint }
export interface MemoryTable { regions: MemoryRegion[] }
export interface ConfigPayload { offset: number; size: number; flags: number; payload: Buffer }
export interface InflightPayload { mmapSize: bigint; mmapOffset: bigint; numQueues: number; queueSize: number }
export interface VringFdPayload { index: number; noFd: boolean }
/** SET_LOG_BASE payload (VhostUserLog): the log's size and offset in the fd sent with it. */
export interface LogPayload { mmapSize: bigint; mmapOffset: bigint }

const MEM_REGION_SIZE = 32;
/** Inflight struct with its trailing padding, as QEMU sends it (sizeof = 24; 20 meaningful). */
const INFLIGHT_SIZE = 24;
const CONFIG_HDR_SIZE = 12;

function bad(request: number, what: string): never {
  throw vhostUserError('VHOST_USER_PAYLOAD', `${requestName(request)}: ${what}`);
}

function expectSize(request: number, p: Uint8Array, min: number, exact = true): Buffer {
  if (exact ? p.length !== min : p.length < min) bad(request, `payload is ${p.length} bytes, expected ${exact ? '' : 'at least '}${min}`);
  return Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}

export function encodeU64(v: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
}

export function decodeU64(request: number, p: Uint8Array): bigint {
  return expectSize(request, p, 8).readBigUInt64LE(0);
}

export function encodeVringState(s: VringState): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(s.index, 0);
  b.writeUInt32LE(s.num, 4);
  return b;
}

export function decodeVringState(request: number, p: Uint8Array): VringState {
  const b = expectSize(request, p, 8);
  return { index: b.readUInt32LE(0), num: b.readUInt32LE(4) };
}

/** Field order on the wire: index, flags, desc, used, avail, log (vhost_vring_addr). */
export function encodeVringAddr(a: VringAddr): Buffer {
  const b = Buffer.alloc(40);
  b.writeUInt32LE(a.index, 0);
  b.writeUInt32LE(a.flags, 4);
  b.writeBigUInt64LE(a.desc, 8);
  b.writeBigUInt64LE(a.used, 16);
  b.writeBigUInt64LE(a.avail, 24);
  b.writeBigUInt64LE(a.log, 32);
  return b;
}

export function decodeVringAddr(request: number, p: Uint8Array): VringAddr {
  const b = expectSize(request, p, 40);
  return {
    index: b.readUInt32LE(0), flags: b.readUInt32LE(4),
    desc: b.readBigUInt64LE(8), used: b.readBigUInt64LE(16), avail: b.readBigUInt64LE(24), log: b.readBigUInt64LE(32),
  };
}

/** SET_VRING_KICK/CALL/ERR: u64 with the queue index in bits 0-7 and bit 8 = no fd attached. */
export function encodeVringFd(index: number, noFd = false): Buffer {
  return encodeU64((index & 0xff) | (noFd ? 0x100 : 0));
}

export function decodeVringFd(request: number, p: Uint8Array): VringFdPayload {
  const v = decodeU64(request, p);
  if (v >> 9n !== 0n) bad(request, `unknown bits set in 0x${v.toString(16)}`);
  return { index: Number(v & 0xffn), noFd: (v & 0x100n) !== 0n };
}

/** SET_MEM_TABLE: {nregions u32, padding u32, regions[nregions]}; the fds travel separately, one per region. */
export function encodeMemoryTable(t: MemoryTable): Buffer {
  const b = Buffer.alloc(8 + MEM_REGION_SIZE * t.regions.length);
  b.writeUInt32LE(t.regions.length, 0);
  t.regions.forEach((r, i) => {
    const o = 8 + i * MEM_REGION_SIZE;
    b.writeBigUInt64LE(r.guestPhysAddr, o);
    b.writeBigUInt64LE(r.memorySize, o + 8);
    b.writeBigUInt64LE(r.userspaceAddr, o + 16);
    b.writeBigUInt64LE(r.mmapOffset, o + 24);
  });
  return b;
}

/**
 * Accepts both the exact size (QEMU sends only nregions entries) and the full 8-region struct
 * (some front ends send sizeof(VhostUserMemory)). Rejects 0 or more than 8 regions and empty regions.
 */
export function decodeMemoryTable(request: number, p: Uint8Array): MemoryTable {
  const b = expectSize(request, p, 8, false);
  const n = b.readUInt32LE(0);
  if (n === 0 || n > VHOST_USER_MAX_MEM_REGIONS) bad(request, `nregions ${n} is not in 1..${VHOST_USER_MAX_MEM_REGIONS}`);
  const exact = 8 + n * MEM_REGION_SIZE;
  if (b.length !== exact && b.length !== 8 + VHOST_USER_MAX_MEM_REGIONS * MEM_REGION_SIZE) bad(request, `payload is ${b.length} bytes for ${n} regions (expected ${exact})`);
  const regions: MemoryRegion[] = [];
  for (let i = 0; i < n; i++) {
    const o = 8 + i * MEM_REGION_SIZE;
    const r = { guestPhysAddr: b.readBigUInt64LE(o), memorySize: b.readBigUInt64LE(o + 8), userspaceAddr: b.readBigUInt64LE(o + 16), mmapOffset: b.readBigUInt64LE(o + 24) };
    if (r.memorySize === 0n) bad(request, `region ${i} has size 0`);
    if (r.guestPhysAddr + r.memorySize > 1n << 64n || r.userspaceAddr + r.memorySize > 1n << 64n) bad(request, `region ${i} wraps the address space`);
    regions.push(r);
  }
  return { regions };
}

/** GET_CONFIG/SET_CONFIG: {offset u32, size u32, flags u32, bytes[size]}. For GET_CONFIG the bytes are zeros. */
export function encodeConfig(c: { offset: number; size: number; flags?: number; payload?: Uint8Array }): Buffer {
  const b = Buffer.alloc(CONFIG_HDR_SIZE + c.size);
  b.writeUInt32LE(c.offset, 0);
  b.writeUInt32LE(c.size, 4);
  b.writeUInt32LE(c.flags ?? 0, 8);
  if (c.payload) Buffer.from(c.payload.buffer, c.payload.byteOffset, Math.min(c.payload.byteLength, c.size)).copy(b, CONFIG_HDR_SIZE);
  return b;
}

export function decodeConfig(request: number, p: Uint8Array): ConfigPayload {
  const b = expectSize(request, p, CONFIG_HDR_SIZE, false);
  const offset = b.readUInt32LE(0), size = b.readUInt32LE(4), flags = b.readUInt32LE(8);
  if (size > VHOST_USER_MAX_CONFIG_SIZE) bad(request, `config size ${size} exceeds ${VHOST_USER_MAX_CONFIG_SIZE}`);
  if (offset + size > VHOST_USER_MAX_CONFIG_SIZE) bad(request, `config range ${offset}+${size} exceeds ${VHOST_USER_MAX_CONFIG_SIZE}`);
  if (b.length !== CONFIG_HDR_SIZE + size) bad(request, `payload is ${b.length} bytes for a ${size}-byte config`);
  return { offset, size, flags, payload: Buffer.from(b.subarray(CONFIG_HDR_SIZE)) };
}

export function encodeInflight(i: InflightPayload): Buffer {
  const b = Buffer.alloc(INFLIGHT_SIZE);
  b.writeBigUInt64LE(i.mmapSize, 0);
  b.writeBigUInt64LE(i.mmapOffset, 8);
  b.writeUInt16LE(i.numQueues, 16);
  b.writeUInt16LE(i.queueSize, 18);
  return b;
}

/** Accepts 20 bytes (packed) or 24 (with C padding, as QEMU sends). */
export function decodeInflight(request: number, p: Uint8Array): InflightPayload {
  if (p.length !== 20 && p.length !== INFLIGHT_SIZE) bad(request, `payload is ${p.length} bytes, expected 24 (or 20)`);
  const b = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  return { mmapSize: b.readBigUInt64LE(0), mmapOffset: b.readBigUInt64LE(8), numQueues: b.readUInt16LE(16), queueSize: b.readUInt16LE(18) };
}

export function encodeLog(l: LogPayload): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(l.mmapSize, 0);
  b.writeBigUInt64LE(l.mmapOffset, 8);
  return b;
}

export function decodeLog(request: number, p: Uint8Array): LogPayload {
  const b = expectSize(request, p, 16);
  return { mmapSize: b.readBigUInt64LE(0), mmapOffset: b.readBigUInt64LE(8) };
}
