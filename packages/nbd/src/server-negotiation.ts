import type { Socket } from 'node:net';
import type { SocketReader } from './byte-queue';
import type { NbdExport } from './nbd-export';
import {
  decodeInfoRequest, encodeInfoBlockSize, encodeInfoExport, encodeOptionReply, NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES, NBD_FLAG_FIXED_NEWSTYLE, NBD_FLAG_NO_ZEROES, NBD_MAGIC, NBD_MAX_OPTION_DATA, NBD_MAX_PAYLOAD,
  NBD_OPT_ABORT, NBD_OPT_EXPORT_NAME, NBD_OPT_GO, NBD_OPT_INFO, NBD_OPT_LIST, NBD_OPTS_MAGIC, NBD_PREFERRED_BLOCK_SIZE,
  NBD_REP_ACK, NBD_REP_ERR_INVALID, NBD_REP_ERR_UNKNOWN, NBD_REP_ERR_UNSUP, NBD_REP_INFO, NBD_REP_SERVER,
} from './protocol';

/** Where negotiation looks exports up. */
export interface ExportDirectory {
  find(name: string): NbdExport | undefined;
  names(): string[];
}

/** Negotiation outcome: the export chosen, or null when the client aborted or the session must end. */
export type NegotiationResult = { export: NbdExport } | { export: null; reason: string };

/** Options a hostile or broken client may send before giving up: bounds the work per connection. */
const MAX_OPTIONS = 128;

/**
 * Server side of fixed newstyle negotiation. Options: EXPORT_NAME, GO, INFO, LIST, ABORT; every
 * other option (STARTTLS, STRUCTURED_REPLY, meta contexts, extended headers) gets
 * NBD_REP_ERR_UNSUP, so transmission always uses simple replies.
 */
export async function negotiateServer(socket: Socket, reader: SocketReader, dir: ExportDirectory): Promise<NegotiationResult> {
  const hello = Buffer.alloc(18);
  hello.writeBigUInt64BE(NBD_MAGIC, 0);
  hello.writeBigUInt64BE(NBD_OPTS_MAGIC, 8);
  hello.writeUInt16BE(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES, 16);
  socket.write(hello);
  const clientFlags = (await reader.read(4)).readUInt32BE(0);
  // The spec requires dropping a client that sets a flag we did not offer.
  if ((clientFlags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) !== 0) return { export: null, reason: `unknown client flags 0x${clientFlags.toString(16)}` };
  const noZeroes = (clientFlags & NBD_FLAG_C_NO_ZEROES) !== 0;
  for (let n = 0; n < MAX_OPTIONS; n++) {
    const h = await reader.read(16);
    if (h.readBigUInt64BE(0) !== NBD_OPTS_MAGIC) return { export: null, reason: 'bad option magic' };
    const opt = h.readUInt32BE(8);
    const len = h.readUInt32BE(12);
    if (len > NBD_MAX_OPTION_DATA) return { export: null, reason: `option ${opt} data of ${len} bytes` };
    const data = await reader.read(len);
    const reply = (type: number, payload?: Buffer) => socket.write(encodeOptionReply(opt, type, payload));
    switch (opt) {
      case NBD_OPT_EXPORT_NAME: {
        const exp = dir.find(data.toString('utf8'));
        // EXPORT_NAME has no way to report an error: the spec says to end the session.
        if (!exp) return { export: null, reason: `unknown export '${data.toString('utf8')}'` };
        const b = Buffer.alloc(noZeroes ? 10 : 134);
        b.writeBigUInt64BE(BigInt(exp.size), 0);
        b.writeUInt16BE(exp.transmissionFlags, 8);
        socket.write(b);
        return { export: exp };
      }
      case NBD_OPT_ABORT:
        reply(NBD_REP_ACK);
        return { export: null, reason: 'client aborted' };
      case NBD_OPT_LIST:
        if (len !== 0) {
          reply(NBD_REP_ERR_INVALID, Buffer.from('NBD_OPT_LIST takes no data'));
          break;
        }
        for (const name of dir.names()) {
          const nb = Buffer.from(name, 'utf8');
          const d = Buffer.alloc(4 + nb.length);
          d.writeUInt32BE(nb.length, 0);
          nb.copy(d, 4);
          reply(NBD_REP_SERVER, d);
        }
        reply(NBD_REP_ACK);
        break;
      case NBD_OPT_INFO:
      case NBD_OPT_GO: {
        const req = decodeInfoRequest(data);
        if (!req) {
          reply(NBD_REP_ERR_INVALID, Buffer.from('malformed NBD_OPT_INFO/GO data'));
          break;
        }
        const exp = dir.find(req.name);
        if (!exp) {
          reply(NBD_REP_ERR_UNKNOWN, Buffer.from(`no export named '${req.name}'`));
          break;
        }
        reply(NBD_REP_INFO, encodeInfoExport(exp.size, exp.transmissionFlags));
        // Sent whether asked for or not (the spec allows it); unaligned requests are still served
        // (by read-modify-write), so clients that ignore the minimum work too.
        reply(NBD_REP_INFO, encodeInfoBlockSize(exp.blockSize, Math.max(NBD_PREFERRED_BLOCK_SIZE, exp.blockSize), NBD_MAX_PAYLOAD));
        reply(NBD_REP_ACK);
        if (opt === NBD_OPT_GO) return { export: exp };
        break;
      }
      default:
        reply(NBD_REP_ERR_UNSUP, Buffer.from(`option ${opt} is not supported (simple replies only, no TLS)`));
    }
  }
  return { export: null, reason: `more than ${MAX_OPTIONS} options` };
}
