import type { Socket } from 'node:net';
import { IoType, type Logger } from '@blockwork/core';
import { ByteQueue, SocketReader } from './byte-queue';
import type { NbdExport } from './nbd-export';
import {
  decodeRequest, encodeSimpleReply, NBD_CMD_DISC, NBD_CMD_FLAG_FUA, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_FLUSH, NBD_CMD_READ,
  NBD_CMD_TRIM, NBD_CMD_WRITE, NBD_CMD_WRITE_ZEROES, NBD_EINVAL, NBD_ENOTSUP, NBD_EPERM, NBD_MAX_PAYLOAD, type NbdRequest,
  REQUEST_HEADER_SIZE, SIMPLE_REPLY_SIZE,
} from './protocol';
import { type ExportDirectory, negotiateServer } from './server-negotiation';
import { ServerRequest } from './server-request';

/** Requests in flight on one connection before it stops reading (backpressure). */
const MAX_INFLIGHT = 128;
const KNOWN_FLAGS = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE;

/**
 * One client connection of the export server: negotiation, then the transmission phase. Requests
 * are parsed synchronously from the socket's data and run concurrently (several in flight, replies
 * in completion order, matched by handle). A protocol violation closes only this connection.
 */
export class NbdServerConnection {
  private readonly queue = new ByteQueue();
  private exp: NbdExport | null = null;
  /** Header of a WRITE whose payload has not fully arrived. */
  private pendingWrite: NbdRequest | null = null;
  private inflight = 0;
  private paused = false;
  private disconnecting = false;
  private corked = false;
  closed = false;
  private readonly uncork = () => {
    this.corked = false;
    this.socket.uncork();
  };

  constructor(
    private readonly socket: Socket,
    private readonly dir: ExportDirectory,
    private readonly log: Logger,
    private readonly onClose: (c: NbdServerConnection) => void,
  ) {
    socket.setNoDelay(true);
    socket.on('close', () => this.closedByPeer());
    socket.on('error', (e) => this.log.debug({ err: e.message }, 'nbd: connection error'));
  }

  /** Runs negotiation and enters the transmission phase (or closes). Never rejects. */
  async start(): Promise<void> {
    const reader = new SocketReader(this.socket);
    try {
      const r = await negotiateServer(this.socket, reader, this.dir);
      if (this.closed) return;
      if (r.export === null) {
        this.log.debug({ reason: r.reason }, 'nbd: negotiation ended');
        this.socket.end();
        return;
      }
      this.exp = r.export;
      this.exp.connections.add(this);
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'nbd: negotiation failed');
      this.destroy();
      return;
    }
    for (const b of reader.detach()) this.queue.push(b);
    this.socket.on('data', (b: Buffer) => {
      this.queue.push(b);
      this.parse();
    });
    this.parse();
  }

  /** Closes the connection at once (hot-remove, server stop, protocol violation). */
  destroy(): void {
    this.socket.destroy();
    this.closedByPeer();
  }

  private closedByPeer(): void {
    if (this.closed) return;
    this.closed = true;
    this.exp?.connections.delete(this);
    this.onClose(this);
  }

  private violation(why: string): void {
    this.log.warn({ export: this.exp?.name, why }, 'nbd: protocol violation, closing the connection');
    this.destroy();
  }

  private parse(): void {
    while (!this.closed && !this.disconnecting && !this.paused) {
      if (this.pendingWrite) {
        const r = this.pendingWrite;
        if (this.queue.length < r.length) return;
        this.pendingWrite = null;
        this.dispatch(r, this.queue.take(r.length));
        continue;
      }
      if (this.queue.length < REQUEST_HEADER_SIZE) return;
      const r = decodeRequest(this.queue.take(REQUEST_HEADER_SIZE));
      if (r === null) return this.violation('bad request magic');
      if ((r.type === NBD_CMD_READ || r.type === NBD_CMD_WRITE) && r.length > NBD_MAX_PAYLOAD) {
        return this.violation(`${r.type === NBD_CMD_READ ? 'read' : 'write'} of ${r.length} bytes exceeds the maximum`);
      }
      if (r.type === NBD_CMD_WRITE) this.pendingWrite = r;
      else this.dispatch(r, null);
    }
  }

  private dispatch(r: NbdRequest, data: Buffer | null): void {
    const exp = this.exp!;
    if (r.type === NBD_CMD_DISC) {
      this.disconnecting = true;
      if (this.inflight === 0) this.socket.end();
      return;
    }
    const err = this.check(exp, r);
    if (err !== 0) {
      this.reply(r.handleHi, r.handleLo, err, null);
      return;
    }
    this.inflight++;
    if (this.inflight >= MAX_INFLIGHT && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    new ServerRequest(this, exp, r, data).start();
  }

  /** Validates a request against the export; returns an NBD error or 0. */
  private check(exp: NbdExport, r: NbdRequest): number {
    if ((r.flags & ~KNOWN_FLAGS) !== 0) return NBD_EINVAL;
    switch (r.type) {
      case NBD_CMD_READ: case NBD_CMD_FLUSH: break;
      case NBD_CMD_WRITE: case NBD_CMD_TRIM: case NBD_CMD_WRITE_ZEROES:
        if (exp.readonly) return NBD_EPERM;
        if (r.type === NBD_CMD_TRIM && !exp.supports(IoType.UNMAP)) return NBD_ENOTSUP;
        if (r.type === NBD_CMD_WRITE_ZEROES && !exp.supports(IoType.WRITE_ZEROES)) return NBD_ENOTSUP;
        break;
      default:
        return NBD_EINVAL;
    }
    if (r.type !== NBD_CMD_FLUSH && (!r.offsetSafe || r.offset + r.length > exp.size)) return NBD_EINVAL;
    return 0;
  }

  /**
   * Sends a simple reply. `data` (READ only) already has 16 bytes reserved in front for the header,
   * so header and data go out in one buffer. Replies of one event-loop turn share one writev.
   */
  reply(handleHi: number, handleLo: number, error: number, data: Buffer | null): void {
    if (this.closed) return;
    const b = data !== null && error === 0 ? data : Buffer.allocUnsafe(SIMPLE_REPLY_SIZE);
    encodeSimpleReply(b, 0, error, handleHi, handleLo);
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(b);
  }

  /** Called by a request when it has replied. */
  finished(): void {
    this.inflight--;
    if (this.disconnecting && this.inflight === 0 && !this.closed) this.socket.end();
    if (this.paused && this.inflight < MAX_INFLIGHT / 2 && !this.closed) {
      this.paused = false;
      this.socket.resume();
      this.parse();
    }
  }
}
