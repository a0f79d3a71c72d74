import { Errno } from '@blockwork/core';

/*
 * NBD wire constants and codecs (fixed newstyle negotiation, simple replies), after the
 * NetworkBlockDevice project's doc/proto.md. Everything on the wire is big-endian.
 */

/** "NBDMAGIC", the first 8 bytes a server sends. */
export const NBD_MAGIC = 0x4e42444d41474943n;
/** "IHAVEOPT": newstyle magic from the server, and the prefix of every client option. */
export const NBD_OPTS_MAGIC = 0x49484156454f5054n;
/** Old-style negotiation magic (not supported: it has no export names). */
export const NBD_CLISERV_MAGIC = 0x00420281861253n;
/** Magic of every option reply. */
export const NBD_REP_MAGIC = 0x3e889045565a9n;
export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags (server, 16 bits). */
export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;
/** Client flags (32 bits). */
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;

/** Transmission flags (16 bits). */
export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_FUA = 1 << 3;
export const NBD_FLAG_ROTATIONAL = 1 << 4;
export const NBD_FLAG_SEND_TRIM = 1 << 5;
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;

/** Options. */
export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_LIST = 3;
export const NBD_OPT_STARTTLS = 5;
export const NBD_OPT_INFO = 6;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;

/** Option reply types; errors have bit 31 set. */
export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_FLAG_ERROR = 0x80000000;
export const NBD_REP_ERR_UNSUP = NBD_REP_FLAG_ERROR + 1;
export const NBD_REP_ERR_POLICY = NBD_REP_FLAG_ERROR + 2;
export const NBD_REP_ERR_INVALID = NBD_REP_FLAG_ERROR + 3;
export const NBD_REP_ERR_UNKNOWN = NBD_REP_FLAG_ERROR + 6;
export const NBD_REP_ERR_SHUTDOWN = NBD_REP_FLAG_ERROR + 7;

/** NBD_REP_INFO item types. */
export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_NAME = 1;
export const NBD_INFO_DESCRIPTION = 2;
export const NBD_INFO_BLOCK_SIZE = 3;

/** Commands. */
export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_WRITE_ZEROES = 6;

/** Command flags. */
export const NBD_CMD_FLAG_FUA = 1 << 0;
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1;

/** Error values of simple replies (the protocol's own numbering, equal to Linux errno). */
export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

export const REQUEST_HEADER_SIZE = 28;
export const SIMPLE_REPLY_SIZE = 16;
export const OPTION_HEADER_SIZE = 16;
export const OPTION_REPLY_HEADER_SIZE = 20;

/** Largest payload this package sends or accepts in one command (the advertised maximum block size). */
export const NBD_MAX_PAYLOAD = 32 * 1024 * 1024;
/** Preferred block size advertised by the server. */
export const NBD_PREFERRED_BLOCK_SIZE = 4096;
/** Option data longer than this closes the connection (export names are at most 4096 bytes). */
export const NBD_MAX_OPTION_DATA = 64 * 1024;
/** The IANA-registered NBD port. */
export const NBD_DEFAULT_PORT = 10809;

/** A parsed transmission request; `handle` is the client's opaque 64-bit cookie, echoed back. */
export interface NbdRequest {
  flags: number;
  type: number;
  handleHi: number;
  handleLo: number;
  /** Byte offset; may exceed 2^53 only on hostile input, which `offsetSafe` marks. */
  offset: number;
  offsetSafe: boolean;
  /** Byte length. */
  length: number;
}

/** Reads a 28-byte request header at `pos`; returns null on a bad magic. */
export function decodeRequest(b: Buffer, pos = 0): NbdRequest | null {
  if (b.readUInt32BE(pos) !== NBD_REQUEST_MAGIC) return null;
  const hi = b.readUInt32BE(pos + 16);
  const lo = b.readUInt32BE(pos + 20);
  const offset = hi * 0x100000000 + lo;
  return {
    flags: b.readUInt16BE(pos + 4),
    type: b.readUInt16BE(pos + 6),
    handleHi: b.readUInt32BE(pos + 8),
    handleLo: b.readUInt32BE(pos + 12),
    offset,
    offsetSafe: hi < 0x200000,
    length: b.readUInt32BE(pos + 24),
  };
}

/** Writes a 28-byte request header into `b` at `pos`. `offset` in bytes (a safe integer). */
export function encodeRequest(b: Buffer, pos: number, type: number, flags: number, handleHi: number, handleLo: number, offset: number, length: number): void {
  b.writeUInt32BE(NBD_REQUEST_MAGIC, pos);
  b.writeUInt16BE(flags, pos + 4);
  b.writeUInt16BE(type, pos + 6);
  b.writeUInt32BE(handleHi, pos + 8);
  b.writeUInt32BE(handleLo, pos + 12);
  b.writeUInt32BE(Math.floor(offset / 0x100000000), pos + 16);
  b.writeUInt32BE(offset >>> 0, pos + 20);
  b.writeUInt32BE(length, pos + 24);
}

/** Writes a 16-byte simple reply header into `b` at `pos`. */
export function encodeSimpleReply(b: Buffer, pos: number, error: number, handleHi: number, handleLo: number): void {
  b.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, pos);
  b.writeUInt32BE(error, pos + 4);
  b.writeUInt32BE(handleHi, pos + 8);
  b.writeUInt32BE(handleLo, pos + 12);
}

/** One client option (16-byte header + data). */
export function encodeOption(option: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(OPTION_HEADER_SIZE + data.length);
  b.writeBigUInt64BE(NBD_OPTS_MAGIC, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(data.length, 12);
  data.copy(b, OPTION_HEADER_SIZE);
  return b;
}

/** One server option reply (20-byte header + data). */
export function encodeOptionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(OPTION_REPLY_HEADER_SIZE + data.length);
  b.writeBigUInt64BE(NBD_REP_MAGIC, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(type >>> 0, 12);
  b.writeUInt32BE(data.length, 16);
  data.copy(b, OPTION_REPLY_HEADER_SIZE);
  return b;
}

/** Data of NBD_OPT_INFO / NBD_OPT_GO: export name and the info items asked for. */
export function encodeInfoRequest(name: string, infos: number[]): Buffer {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(4 + n.length + 2 + 2 * infos.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  b.writeUInt16BE(infos.length, 4 + n.length);
  infos.forEach((t, i) => b.writeUInt16BE(t, 6 + n.length + 2 * i));
  return b;
}

/** Parses NBD_OPT_INFO / NBD_OPT_GO data; null when the lengths do not add up. */
export function decodeInfoRequest(data: Buffer): { name: string; infos: number[] } | null {
  if (data.length < 6) return null;
  const nameLen = data.readUInt32BE(0);
  if (nameLen > data.length - 6) return null;
  const count = data.readUInt16BE(4 + nameLen);
  if (data.length !== 6 + nameLen + 2 * count) return null;
  const infos: number[] = [];
  for (let i = 0; i < count; i++) infos.push(data.readUInt16BE(6 + nameLen + 2 * i));
  return { name: data.toString('utf8', 4, 4 + nameLen), infos };
}

/** NBD_INFO_EXPORT item: size in bytes and transmission flags. */
export function encodeInfoExport(size: number, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(NBD_INFO_EXPORT, 0);
  b.writeBigUInt64BE(BigInt(size), 2);
  b.writeUInt16BE(flags, 10);
  return b;
}

/** NBD_INFO_BLOCK_SIZE item: minimum, preferred and maximum sizes in bytes. */
export function encodeInfoBlockSize(min: number, preferred: number, max: number): Buffer {
  const b = Buffer.alloc(14);
  b.writeUInt16BE(NBD_INFO_BLOCK_SIZE, 0);
  b.writeUInt32BE(min, 2);
  b.writeUInt32BE(preferred, 6);
  b.writeUInt32BE(max, 10);
  return b;
}

/** Maps a bdev completion status (negative errno) to the NBD error of a simple reply. */
export function nbdErrorOf(status: number): number {
  switch (-status) {
    case 0: return 0;
    case Errno.EPERM: case Errno.EROFS: case Errno.EBADF: case Errno.EACCES: return NBD_EPERM;
    case Errno.EINVAL: return NBD_EINVAL;
    case Errno.ENOSPC: return NBD_ENOSPC;
    case Errno.ENOMEM: return NBD_ENOMEM;
    case Errno.ENOTSUP: return NBD_ENOTSUP;
    case Errno.EOVERFLOW: return NBD_EOVERFLOW;
    case Errno.ENODEV: case NBD_ESHUTDOWN: return NBD_ESHUTDOWN;
    default: return NBD_EIO;
  }
}

/** Maps the error of a simple reply to a bdev completion status (negative errno); unknown values → -EIO. */
export function statusOfNbdError(error: number): number {
  switch (error) {
    case 0: return 0;
    case NBD_EPERM: return -Errno.EPERM;
    case NBD_EINVAL: return -Errno.EINVAL;
    case NBD_ENOSPC: return -Errno.ENOSPC;
    case NBD_ENOMEM: return -Errno.ENOMEM;
    case NBD_ENOTSUP: return -Errno.ENOTSUP;
    case NBD_EOVERFLOW: return -Errno.EOVERFLOW;
    default: return -Errno.EIO;
  }
}
