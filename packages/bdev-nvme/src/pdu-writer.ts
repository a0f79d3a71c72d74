import { crc32c, crc32cv } from './crc32c';
import { CMD_HLEN, DIGEST_SIZE, type DigestState, IC_SIZE, PduFlag, PduType, SHORT_HLEN } from './pdu';

/**
 * Encoders for NVMe/TCP PDUs. Each returns the header part (common header, type header, header
 * digest, padding up to PDO) as a fresh Buffer; data and the data digest are written after it by
 * the caller ({@link dataDigest}), so payload buffers go to the socket without a copy.
 */

/** ICReq/ICResp parameters. */
export interface IcParams {
  /** PDU data alignment the sender wants from its peer (0's based, in dwords): HPDA in ICReq, CPDA in ICResp. */
  pda: number;
  hdgst: boolean;
  ddgst: boolean;
  /** ICReq: MAXR2T (0's based, outstanding R2Ts per command). ICResp: MAXH2CDATA in bytes. */
  limit: number;
}

function ic(type: number, p: IcParams): Buffer {
  const b = Buffer.alloc(IC_SIZE);
  b[0] = type;
  b[2] = IC_SIZE;
  b.writeUInt32LE(IC_SIZE, 4);
  b.writeUInt16LE(0, 8); // PFV 0
  b[10] = p.pda;
  b[11] = (p.hdgst ? 1 : 0) | (p.ddgst ? 2 : 0);
  b.writeUInt32LE(p.limit >>> 0, 12);
  return b;
}

export const encodeIcReq = (p: IcParams): Buffer => ic(PduType.IC_REQ, p);
export const encodeIcResp = (p: IcParams): Buffer => ic(PduType.IC_RESP, p);

/** Decoded ICReq/ICResp body (bytes 8..15). */
export function decodeIc(hdr: Buffer): IcParams & { pfv: number } {
  return { pfv: hdr.readUInt16LE(8), pda: hdr[10], hdgst: (hdr[11] & 1) !== 0, ddgst: (hdr[11] & 2) !== 0, limit: hdr.readUInt32LE(12) };
}

/** Bytes of a header with digest and padding, and the data offset, for a data-bearing PDU. */
function layout(hlen: number, dataLen: number, dg: DigestState, align: number): { pdo: number; plen: number } {
  const hd = dg.hdgst ? DIGEST_SIZE : 0;
  if (dataLen === 0) return { pdo: 0, plen: hlen + hd };
  const pdo = align > 1 ? Math.ceil((hlen + hd) / align) * align : hlen + hd;
  return { pdo, plen: pdo + dataLen + (dg.ddgst ? DIGEST_SIZE : 0) };
}

function finish(b: Buffer, hlen: number, dg: DigestState, dataLen: number): Buffer {
  // The header digest covers the flags byte: set both flags first, then compute it.
  if (dg.ddgst && dataLen > 0) b[1] |= PduFlag.DDGSTF;
  if (dg.hdgst) {
    b[1] |= PduFlag.HDGSTF;
    b.writeUInt32LE(crc32c(b, 0, 0, hlen), hlen);
  }
  return b;
}

function common(type: number, hlen: number, dataLen: number, dg: DigestState, align: number, flags = 0): Buffer {
  const { pdo, plen } = layout(hlen, dataLen, dg, align);
  const b = Buffer.alloc(dataLen > 0 ? pdo : plen);
  b[0] = type;
  b[1] = flags;
  b[2] = hlen;
  b[3] = pdo;
  b.writeUInt32LE(plen, 4);
  return b;
}

/**
 * CapsuleCmd header for a 64-byte SQE with `dataLen` bytes of in-capsule data (0 = none).
 * `align` is the controller's PDU data alignment in bytes ((CPDA+1)*4), 0 or 4 for none.
 */
export function encodeCapsuleCmd(sqe: Uint8Array, dataLen: number, dg: DigestState, align = 0): Buffer {
  const b = common(PduType.CAPSULE_CMD, CMD_HLEN, dataLen, dg, align);
  b.set(sqe.subarray(0, 64), 8);
  return finish(b, CMD_HLEN, dg, dataLen);
}

/** CapsuleResp carrying a 16-byte CQE (used by test targets). */
export function encodeCapsuleResp(cqe: Uint8Array, dg: DigestState): Buffer {
  const b = common(PduType.CAPSULE_RESP, SHORT_HLEN, 0, dg, 0);
  b.set(cqe.subarray(0, 16), 8);
  return finish(b, SHORT_HLEN, dg, 0);
}

/** Fields shared by H2CData, C2HData and R2T. */
export interface DataHeader {
  cccid: number;
  ttag: number;
  /** DATAO / R2TO: offset in the command's data, bytes. */
  offset: number;
  /** DATAL / R2TL: bytes. */
  length: number;
}

function dataPdu(type: number, h: DataHeader, dg: DigestState, flags: number, align: number): Buffer {
  const dataLen = type === PduType.R2T ? 0 : h.length;
  const b = common(type, SHORT_HLEN, dataLen, dg, align, flags);
  b.writeUInt16LE(h.cccid, 8);
  b.writeUInt16LE(h.ttag, 10);
  b.writeUInt32LE(h.offset, 12);
  b.writeUInt32LE(h.length, 16);
  return finish(b, SHORT_HLEN, dg, dataLen);
}

/** H2CData header; `last` sets LAST_PDU (the final PDU of an R2T's transfer). */
export function encodeH2CData(h: DataHeader, last: boolean, dg: DigestState, align = 0): Buffer {
  return dataPdu(PduType.H2C_DATA, h, dg, last ? PduFlag.LAST_PDU : 0, align);
}

/** C2HData header (test targets); `success` implies LAST_PDU and no CapsuleResp follows. */
export function encodeC2HData(h: DataHeader, last: boolean, success: boolean, dg: DigestState, align = 0): Buffer {
  const flags = (last || success ? PduFlag.LAST_PDU : 0) | (success ? PduFlag.SUCCESS : 0);
  return dataPdu(PduType.C2H_DATA, h, dg, flags, align);
}

/** R2T (test targets). */
export function encodeR2T(h: DataHeader, dg: DigestState): Buffer {
  return dataPdu(PduType.R2T, h, dg, 0, 0);
}

/** H2CTermReq / C2HTermReq with a fatal error status and up to 152 bytes of the offending header. */
export function encodeTermReq(fromHost: boolean, fes: number, fei: number, offending: Uint8Array = new Uint8Array(0)): Buffer {
  const extra = offending.subarray(0, 152);
  const b = Buffer.alloc(SHORT_HLEN + extra.length);
  b[0] = fromHost ? PduType.H2C_TERM_REQ : PduType.C2H_TERM_REQ;
  b[2] = SHORT_HLEN;
  b.writeUInt32LE(b.length, 4);
  b.writeUInt16LE(fes, 8);
  b.writeUInt32LE(fei >>> 0, 10);
  b.set(extra, SHORT_HLEN);
  return b;
}

/** The data digest of a payload given as a scatter list, as 4 LE bytes. */
export function dataDigest(data: readonly Uint8Array[]): Buffer {
  const d = Buffer.allocUnsafe(DIGEST_SIZE);
  d.writeUInt32LE(crc32cv(data), 0);
  return d;
}
