import { crc32c } from './crc32c';

/**
 * NVMe/TCP PDUs (TP 8000, NVMe/TCP transport spec 1.0): the common header
 * {type u8, flags u8, hlen u8, pdo u8, plen u32 LE}, the fixed header of each type, optional header
 * digest (CRC32C of the header, after it), padding up to PDO, data, optional data digest.
 */
export const PduType = {
  IC_REQ: 0x00,
  IC_RESP: 0x01,
  H2C_TERM_REQ: 0x02,
  C2H_TERM_REQ: 0x03,
  CAPSULE_CMD: 0x04,
  CAPSULE_RESP: 0x05,
  H2C_DATA: 0x06,
  C2H_DATA: 0x07,
  R2T: 0x09,
} as const;

/** Common header flags. LAST_PDU and SUCCESS apply to data PDUs only. */
export const PduFlag = { HDGSTF: 0x01, DDGSTF: 0x02, LAST_PDU: 0x04, SUCCESS: 0x08 } as const;

/** Fatal error status of a termination request. */
export const Fes = {
  INVALID_HEADER_FIELD: 0x01,
  PDU_SEQUENCE_ERROR: 0x02,
  HEADER_DIGEST_ERROR: 0x03,
  DATA_OUT_OF_RANGE: 0x04,
  DATA_LIMIT_EXCEEDED: 0x05,
  UNSUPPORTED_PARAMETER: 0x06,
} as const;

export const CH_SIZE = 8;
export const DIGEST_SIZE = 4;
export const IC_SIZE = 128;
/** hlen of CapsuleCmd: common header + 64-byte SQE. */
export const CMD_HLEN = 72;
/** hlen of CapsuleResp, H2CData, C2HData, R2T and the termination requests. */
export const SHORT_HLEN = 24;
/** Largest termination request: header + up to 152 bytes of the offending PDU header. */
export const TERM_MAX_PLEN = SHORT_HLEN + 152;

/** What each PDU type looks like: fixed hlen, direction, whether it carries data and digests. */
interface PduShape {
  name: string;
  hlen: number;
  /** Sent by the host (true) or the controller (false). */
  h2c: boolean;
  /** 'none': pdo 0, plen = hlen (+hdgst); 'maybe'/'always': data after pdo. */
  data: 'none' | 'maybe' | 'always';
  /** Header/data digests apply once negotiated (not to IC and termination PDUs). */
  digests: boolean;
}

const SHAPES: Record<number, PduShape> = {
  [PduType.IC_REQ]: { name: 'ICReq', hlen: IC_SIZE, h2c: true, data: 'none', digests: false },
  [PduType.IC_RESP]: { name: 'ICResp', hlen: IC_SIZE, h2c: false, data: 'none', digests: false },
  [PduType.H2C_TERM_REQ]: { name: 'H2CTermReq', hlen: SHORT_HLEN, h2c: true, data: 'none', digests: false },
  [PduType.C2H_TERM_REQ]: { name: 'C2HTermReq', hlen: SHORT_HLEN, h2c: false, data: 'none', digests: false },
  [PduType.CAPSULE_CMD]: { name: 'CapsuleCmd', hlen: CMD_HLEN, h2c: true, data: 'maybe', digests: true },
  [PduType.CAPSULE_RESP]: { name: 'CapsuleResp', hlen: SHORT_HLEN, h2c: false, data: 'none', digests: true },
  [PduType.H2C_DATA]: { name: 'H2CData', hlen: SHORT_HLEN, h2c: true, data: 'always', digests: true },
  [PduType.C2H_DATA]: { name: 'C2HData', hlen: SHORT_HLEN, h2c: false, data: 'always', digests: true },
  [PduType.R2T]: { name: 'R2T', hlen: SHORT_HLEN, h2c: false, data: 'none', digests: true },
};

/** Name of a PDU type for messages ("C2HData", "type 0x0b"). */
export function pduTypeName(type: number): string {
  return SHAPES[type]?.name ?? `type 0x${type.toString(16).padStart(2, '0')}`;
}

/** A malformed or unexpected PDU: the connection must be terminated with `fes`. */
export class PduError extends Error {
  constructor(readonly fes: number, message: string, readonly fei = 0) {
    super(message);
    this.name = 'PduError';
  }
}

/** Digest settings of a connection (fixed after ICReq/ICResp). */
export interface DigestState {
  hdgst: boolean;
  ddgst: boolean;
}

/**
 * One received PDU. The parser reuses this object and the buffers it views: a consumer copies
 * what it needs before returning from the callback.
 */
export interface Pdu {
  type: number;
  flags: number;
  hlen: number;
  pdo: number;
  plen: number;
  /** The header (hlen bytes, without digest). */
  hdr: Buffer;
  /** The data section (without padding and digest); empty when none. */
  data: Buffer;
}

/**
 * Checks the common header of a PDU whose first 8 bytes are at `b[o..]`, before the rest
 * arrives: known type in the expected direction, the type's hlen, plen within bounds.
 * Throws PduError.
 */
export function checkCommonHeader(b: Buffer, o: number, fromHost: boolean, dg: DigestState, maxPlen: number): void {
  const type = b[o];
  const shape = SHAPES[type];
  if (shape === undefined || shape.h2c !== fromHost) {
    throw new PduError(Fes.INVALID_HEADER_FIELD, `unexpected PDU ${pduTypeName(type)} from the ${fromHost ? 'host' : 'controller'}`, 0);
  }
  const hlen = b[o + 2];
  if (hlen !== shape.hlen) throw new PduError(Fes.INVALID_HEADER_FIELD, `${shape.name} with hlen ${hlen}, expected ${shape.hlen}`, 2);
  const plen = b.readUInt32LE(o + 4);
  const hd = shape.digests && dg.hdgst ? DIGEST_SIZE : 0;
  const minPlen = hlen + hd;
  const maxThis = type === PduType.H2C_TERM_REQ || type === PduType.C2H_TERM_REQ ? TERM_MAX_PLEN : shape.data === 'none' ? minPlen : maxPlen;
  if (plen < minPlen || plen > maxThis) {
    throw new PduError(Fes.INVALID_HEADER_FIELD, `${shape.name} with plen ${plen}, expected ${minPlen === maxThis ? minPlen : `${minPlen}..${maxThis}`}`, 4);
  }
}

/**
 * Checks a complete PDU at `b[o, o+plen)` (flags, pdo, digests) and fills `out` with views of it.
 * Throws PduError; a digest mismatch is HEADER_DIGEST_ERROR or a data error naming the digest.
 */
export function parsePdu(b: Buffer, o: number, dg: DigestState, out: Pdu): void {
  const type = b[o];
  const shape = SHAPES[type];
  const flags = b[o + 1];
  const hlen = b[o + 2];
  const pdo = b[o + 3];
  const plen = b.readUInt32LE(o + 4);
  const useDigests = shape.digests;
  const hd = useDigests && dg.hdgst ? DIGEST_SIZE : 0;
  if (useDigests && ((flags & PduFlag.HDGSTF) !== 0) !== dg.hdgst) {
    throw new PduError(Fes.INVALID_HEADER_FIELD, `${shape.name} HDGSTF flag ${flags & 1} does not match the negotiated header digest (${dg.hdgst ? 'on' : 'off'})`, 1);
  }
  if (hd) {
    const want = crc32c(b, 0, o, o + hlen);
    const got = b.readUInt32LE(o + hlen);
    if (want !== got) throw new PduError(Fes.HEADER_DIGEST_ERROR, `${shape.name} header digest mismatch (got 0x${got.toString(16)}, computed 0x${want.toString(16)})`);
  }
  let dataStart = o + plen;
  let dataEnd = o + plen;
  const hasData = plen > hlen + hd;
  if (shape.data === 'none' || !hasData) {
    if (shape.data === 'always') throw new PduError(Fes.INVALID_HEADER_FIELD, `${shape.name} without data`, 4);
    if (pdo !== 0 && type !== PduType.CAPSULE_CMD) throw new PduError(Fes.INVALID_HEADER_FIELD, `${shape.name} with pdo ${pdo}, expected 0`, 3);
    if (type === PduType.H2C_TERM_REQ || type === PduType.C2H_TERM_REQ) dataStart = o + hlen;
  } else {
    const dd = dg.ddgst ? DIGEST_SIZE : 0;
    if (((flags & PduFlag.DDGSTF) !== 0) !== dg.ddgst) {
      throw new PduError(Fes.INVALID_HEADER_FIELD, `${shape.name} DDGSTF flag does not match the negotiated data digest (${dg.ddgst ? 'on' : 'off'})`, 1);
    }
    if (pdo < hlen + hd || pdo + dd >= plen) {
      throw new PduError(Fes.INVALID_HEADER_FIELD, `${shape.name} with pdo ${pdo} inconsistent with hlen ${hlen}${hd ? '+digest' : ''} and plen ${plen}`, 3);
    }
    dataStart = o + pdo;
    dataEnd = o + plen - dd;
    if (dd) {
      const want = crc32c(b, 0, dataStart, dataEnd);
      const got = b.readUInt32LE(dataEnd);
      // No FES names a data digest error; 0 means: close without a termination request.
      if (want !== got) throw new PduError(0, `${shape.name} data digest mismatch (got 0x${got.toString(16)}, computed 0x${want.toString(16)})`);
    }
  }
  out.type = type;
  out.flags = flags;
  out.hlen = hlen;
  out.pdo = pdo;
  out.plen = plen;
  out.hdr = b.subarray(o, o + hlen);
  out.data = b.subarray(dataStart, dataEnd);
}
