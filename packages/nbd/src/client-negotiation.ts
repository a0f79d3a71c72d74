import { connect, type Socket } from 'node:net';
import type { SocketReader } from './byte-queue';
import { nbdError } from './errors';
import {
  encodeInfoRequest, encodeOption, NBD_CLISERV_MAGIC, NBD_DEFAULT_PORT, NBD_FLAG_C_FIXED_NEWSTYLE, NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE, NBD_FLAG_NO_ZEROES, NBD_INFO_BLOCK_SIZE, NBD_INFO_EXPORT, NBD_MAGIC, NBD_MAX_OPTION_DATA,
  NBD_MAX_PAYLOAD, NBD_OPT_EXPORT_NAME, NBD_OPT_GO, NBD_OPTS_MAGIC, NBD_REP_ACK, NBD_REP_ERR_UNSUP, NBD_REP_FLAG_ERROR,
  NBD_REP_INFO, NBD_REP_MAGIC,
} from './protocol';

/** Where an NBD client connects: a TCP host and port, or a Unix socket, and the export name. */
export interface NbdTarget {
  address?: string;
  port?: number;
  socket?: string;
  exportName: string;
}

/** What the server told about the export. Sizes in bytes. */
export interface NegotiatedExport {
  size: number;
  /** Transmission flags. */
  flags: number;
  /** Block size constraints; 1 / 4096 / 32 MiB when the server sent none. */
  minBlock: number;
  preferredBlock: number;
  maxBlock: number;
}

/** Opens the socket; rejects with NBD_CONNECT_FAILED (errno of the failure) after `timeoutMs` at most. */
export function connectTarget(t: NbdTarget, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = t.socket !== undefined ? connect(t.socket) : connect(t.port ?? NBD_DEFAULT_PORT, t.address ?? '127.0.0.1');
    const where = t.socket ?? `${t.address ?? '127.0.0.1'}:${t.port ?? NBD_DEFAULT_PORT}`;
    const timer = setTimeout(() => {
      s.destroy();
      reject(nbdError('NBD_CONNECT_FAILED', `NBD server ${where}: connect timed out after ${timeoutMs} ms`, { errno: 110 }));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(nbdError('NBD_CONNECT_FAILED', `NBD server ${where}: ${e.message}`,
        { cause: e, errno: e.errno === undefined ? undefined : Math.abs(e.errno) }));
    });
  });
}

function protocolError(msg: string): Error {
  return nbdError('NBD_HANDSHAKE', `NBD negotiation: ${msg}`);
}

/**
 * Client side of fixed newstyle negotiation: NBD_OPT_GO asking for NBD_INFO_BLOCK_SIZE, falling
 * back to NBD_OPT_EXPORT_NAME when the server does not know GO. No structured replies, no TLS.
 */
export async function negotiateClient(socket: Socket, reader: SocketReader, exportName: string): Promise<NegotiatedExport> {
  const head = await reader.read(18);
  if (head.readBigUInt64BE(0) !== NBD_MAGIC) throw protocolError('not an NBD server (bad magic)');
  const second = head.readBigUInt64BE(8);
  if (second === NBD_CLISERV_MAGIC) throw protocolError('server uses old-style negotiation (no export names); not supported');
  if (second !== NBD_OPTS_MAGIC) throw protocolError('bad newstyle magic');
  const hflags = head.readUInt16BE(16);
  if ((hflags & NBD_FLAG_FIXED_NEWSTYLE) === 0) throw protocolError('server does not support fixed newstyle negotiation');
  const noZeroes = (hflags & NBD_FLAG_NO_ZEROES) !== 0;
  const cflags = Buffer.alloc(4);
  cflags.writeUInt32BE(NBD_FLAG_C_FIXED_NEWSTYLE | (noZeroes ? NBD_FLAG_C_NO_ZEROES : 0), 0);
  socket.write(cflags);
  socket.write(encodeOption(NBD_OPT_GO, encodeInfoRequest(exportName, [NBD_INFO_BLOCK_SIZE])));
  const out: NegotiatedExport = { size: -1, flags: 0, minBlock: 1, preferredBlock: 4096, maxBlock: NBD_MAX_PAYLOAD };
  for (;;) {
    const h = await reader.read(20);
    if (h.readBigUInt64BE(0) !== NBD_REP_MAGIC) throw protocolError('bad option reply magic');
    const type = h.readUInt32BE(12);
    const len = h.readUInt32BE(16);
    if (len > NBD_MAX_OPTION_DATA) throw protocolError(`option reply of ${len} bytes`);
    const data = await reader.read(len);
    if (type === NBD_REP_INFO) {
      readInfo(data, out);
    } else if (type === NBD_REP_ACK) {
      if (out.size < 0) throw protocolError('server acknowledged NBD_OPT_GO without NBD_INFO_EXPORT');
      return out;
    } else if (type === NBD_REP_ERR_UNSUP) {
      return exportNameFallback(socket, reader, exportName, noZeroes, out);
    } else if (type >= NBD_REP_FLAG_ERROR) {
      const text = data.length > 0 ? `: ${data.toString('utf8')}` : '';
      throw nbdError('NBD_EXPORT_REFUSED', `NBD server refused export '${exportName}' (reply 0x${type.toString(16)})${text}`);
    }
    // Other reply types to GO are not defined for what we asked; skip them, as the spec says.
  }
}

function readInfo(data: Buffer, out: NegotiatedExport): void {
  if (data.length < 2) throw protocolError('short NBD_REP_INFO');
  const info = data.readUInt16BE(0);
  if (info === NBD_INFO_EXPORT) {
    if (data.length !== 12) throw protocolError('bad NBD_INFO_EXPORT length');
    out.size = Number(data.readBigUInt64BE(2));
    out.flags = data.readUInt16BE(10);
  } else if (info === NBD_INFO_BLOCK_SIZE) {
    if (data.length !== 14) throw protocolError('bad NBD_INFO_BLOCK_SIZE length');
    out.minBlock = data.readUInt32BE(2);
    out.preferredBlock = data.readUInt32BE(6);
    out.maxBlock = Math.min(data.readUInt32BE(10), NBD_MAX_PAYLOAD);
  }
}

async function exportNameFallback(socket: Socket, reader: SocketReader, name: string, noZeroes: boolean, out: NegotiatedExport): Promise<NegotiatedExport> {
  socket.write(encodeOption(NBD_OPT_EXPORT_NAME, Buffer.from(name, 'utf8')));
  let b: Buffer;
  try {
    b = await reader.read(noZeroes ? 10 : 134);
  } catch (e) {
    // With EXPORT_NAME the only way a server can refuse is to hang up.
    throw nbdError('NBD_EXPORT_REFUSED', `NBD server closed the connection on export '${name}' (unknown export?)`, { cause: e });
  }
  out.size = Number(b.readBigUInt64BE(0));
  out.flags = b.readUInt16BE(8);
  return out;
}
