/**
 * NVMe base and Fabrics definitions the driver uses (NVMe 2.0 base spec, Fabrics 1.1): opcodes,
 * controller properties, status codes, and the 64-byte submission queue entry layout.
 */

/** Admin command opcodes. */
export const AdminOpc = {
  GET_LOG_PAGE: 0x02,
  IDENTIFY: 0x06,
  ABORT: 0x08,
  SET_FEATURES: 0x09,
  GET_FEATURES: 0x0a,
  KEEP_ALIVE: 0x18,
  FABRICS: 0x7f,
} as const;

/** NVM command set I/O opcodes. */
export const IoOpc = {
  FLUSH: 0x00,
  WRITE: 0x01,
  READ: 0x02,
  WRITE_ZEROES: 0x08,
  DSM: 0x09,
} as const;

/** Fabrics command types (FCTYPE, SQE byte 4). */
export const FcType = { PROPERTY_SET: 0x00, CONNECT: 0x01, PROPERTY_GET: 0x04 } as const;

/** Identify CNS values. */
export const Cns = { NAMESPACE: 0x00, CONTROLLER: 0x01, ACTIVE_NS_LIST: 0x02 } as const;

/** Feature ids. */
export const Fid = { NUMBER_OF_QUEUES: 0x07, KEEP_ALIVE_TIMER: 0x0f } as const;

/** Controller property offsets (Fabrics Property Get/Set; PCIe BAR0 offsets alike). */
export const Prop = { CAP: 0x00, VS: 0x08, CC: 0x14, CSTS: 0x1c } as const;

/** The well-known discovery subsystem NQN. */
export const DISCOVERY_NQN = 'nqn.2014-08.org.nvmexpress.discovery';

/** CC: enable, NVM command set, 4 KiB pages, I/O SQ entry 2^6, CQ entry 2^4 (nvmet checks these). */
export const CC_ENABLE = 0x1 | (6 << 16) | (4 << 20);
/** CC.SHN = 01b: normal shutdown notification. */
export const CC_SHN_NORMAL = 1 << 14;
export const CSTS_RDY = 0x1;
export const CSTS_CFS = 0x2;
/** CSTS.SHST = 10b: shutdown processing complete. */
export const CSTS_SHST_MASK = 0xc;
export const CSTS_SHST_COMPLETE = 0x8;

/** Status code types (SCT) and the codes the driver names. */
export const Sct = { GENERIC: 0, COMMAND_SPECIFIC: 1, MEDIA: 2, PATH: 3, VENDOR: 7 } as const;
export const SC_CONNECT_INVALID_PARAM = 0x82;
export const SC_CONNECT_INVALID_HOST = 0x84;
export const SC_ABORTED_BY_REQUEST = 0x07;

/** SQE byte 15 of the SGL descriptor: data block, offset subtype (in-capsule data). */
export const SGL_DATA_BLOCK_OFFSET = 0x01;
/** SQE byte 15: transport SGL data block (data moved by R2T/H2CData or C2HData). */
export const SGL_TRANSPORT_DATA_BLOCK = 0x5a;
/** CDW0 PSDT = 01b: SGLs for data (Fabrics requires SGLs). */
export const PSDT_SGL = 0x40;

/** Size of a submission queue entry and a completion queue entry. */
export const SQE_SIZE = 64;
export const CQE_SIZE = 16;

/**
 * Writes the common SQE fields: opcode, flags (PSDT), nsid and zeroes the rest except the cid
 * (bytes 2–3), which the queue pair fills at submission.
 */
export function sqeInit(sqe: Buffer, opc: number, nsid: number): void {
  sqe.fill(0);
  sqe[0] = opc;
  sqe[1] = PSDT_SGL;
  sqe.writeUInt32LE(nsid >>> 0, 4);
}

/** Sets a CDW (10..15) of an SQE. */
export function sqeCdw(sqe: Buffer, n: number, value: number): void {
  sqe.writeUInt32LE(value >>> 0, n * 4);
}

/** Read/Write/Write Zeroes LBA range: SLBA in CDW10–11, 0's based NLB in CDW12. */
export function sqeLba(sqe: Buffer, slba: number, nlb: number): void {
  sqe.writeUInt32LE(slba % 0x100000000, 40);
  sqe.writeUInt32LE(Math.floor(slba / 0x100000000), 44);
  sqe.writeUInt32LE((nlb - 1) & 0xffff, 48);
}

/** A completion as the queue pair reports it. */
export interface NvmeStatus {
  /** Status code type (0 generic, 1 command specific, ...). */
  sct: number;
  /** Status code. */
  sc: number;
  /** Do Not Retry. */
  dnr: boolean;
}

/** The 15-bit status field of CQE DW3 (without the phase bit) → parts. */
export function decodeStatus(sf: number): NvmeStatus {
  return { sc: sf & 0xff, sct: (sf >> 8) & 0x7, dnr: (sf & 0x4000) !== 0 };
}

const GENERIC_TEXT: Record<number, string> = {
  0x01: 'Invalid Command Opcode', 0x02: 'Invalid Field in Command', 0x03: 'Command ID Conflict',
  0x04: 'Data Transfer Error', 0x06: 'Internal Error', 0x07: 'Command Abort Requested',
  0x0b: 'Invalid Namespace or Format', 0x0c: 'Command Sequence Error', 0x0d: 'Invalid SGL Descriptor',
  0x0f: 'Invalid SGL Segment Descriptor', 0x80: 'LBA Out of Range', 0x81: 'Capacity Exceeded',
  0x82: 'Namespace Not Ready',
};
const FABRICS_TEXT: Record<number, string> = {
  0x80: 'Connect Incompatible Format', 0x81: 'Connect Controller Busy', 0x82: 'Connect Invalid Parameters',
  0x83: 'Connect Restart Discovery', 0x84: 'Connect Invalid Host',
};

/** "sct 1 sc 0x82 (Connect Invalid Parameters)" for messages and logs. */
export function statusText(sf: number, fabrics = false): string {
  const s = decodeStatus(sf);
  const name = s.sct === 0 ? GENERIC_TEXT[s.sc] : s.sct === 1 && fabrics ? FABRICS_TEXT[s.sc] : undefined;
  return `sct ${s.sct} sc 0x${s.sc.toString(16).padStart(2, '0')}${name ? ` (${name})` : ''}`;
}

/**
 * Maps an NVMe status to the negative errno a bdev I/O completes with: invalid field / LBA range
 * → -EINVAL, unsupported opcode → -ENOTSUP, abort → -ECANCELED, everything else -EIO.
 */
export function statusToErrno(sf: number): number {
  const s = decodeStatus(sf);
  if (s.sct === 0) {
    if (s.sc === 0x01) return -95;
    if (s.sc === 0x02 || s.sc === 0x80) return -22;
    if (s.sc === SC_ABORTED_BY_REQUEST) return -125;
  }
  return -5;
}
