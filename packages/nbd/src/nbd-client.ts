import type { Socket } from 'node:net';
import { Errno, type IoCallback } from '@blockwork/core';
import { ByteQueue, SocketReader } from './byte-queue';
import { connectTarget, type NbdTarget, type NegotiatedExport, negotiateClient } from './client-negotiation';
import {
  encodeRequest, NBD_CMD_DISC, NBD_CMD_READ, NBD_SIMPLE_REPLY_MAGIC, REQUEST_HEADER_SIZE, SIMPLE_REPLY_SIZE, statusOfNbdError,
} from './protocol';

/** A request sent and not answered yet. */
interface Pending {
  cmd: number;
  /** Destination of READ data. */
  iovs: Uint8Array[];
  length: number;
  cb: IoCallback;
  arg: unknown;
}

const EMPTY: Uint8Array[] = [];

/**
 * One connection to an NBD server in the transmission phase: requests tagged with handles,
 * several in flight, replies matched by handle in whatever order they come. Requests submitted in
 * one event-loop turn leave in one writev (the socket is corked until the next tick).
 * When the connection drops, every request in flight fails with -EIO.
 */
export class NbdClient {
  private readonly queue = new ByteQueue();
  private readonly pending = new Map<number, Pending>();
  private nextHandle = 1;
  private corked = false;
  /** A READ reply whose data is still arriving. */
  private reading: { p: Pending; iov: number; pos: number; left: number } | null = null;
  private replyHandle = 0;
  private replyError = 0;
  closed = false;
  private readonly uncork = () => {
    this.corked = false;
    if (!this.closed) this.socket.uncork();
  };

  private constructor(
    private readonly socket: Socket,
    /** What the server told about the export at connection time. */
    readonly info: NegotiatedExport,
    buffered: Buffer[],
    private readonly onClose: (c: NbdClient) => void,
  ) {
    for (const b of buffered) this.queue.push(b);
    socket.setNoDelay(true);
    socket.on('data', (b: Buffer) => {
      this.queue.push(b);
      this.parse();
    });
    socket.on('error', () => {});
    socket.on('close', () => this.lost());
  }

  /** Connects and negotiates; rejects with a coded NBD error. `timeoutMs` bounds connect and negotiation each. */
  static async connect(t: NbdTarget, timeoutMs: number, onClose: (c: NbdClient) => void): Promise<NbdClient> {
    const socket = await connectTarget(t, timeoutMs);
    const reader = new SocketReader(socket);
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`NBD negotiation timed out after ${timeoutMs} ms`)));
    try {
      const info = await negotiateClient(socket, reader, t.exportName);
      socket.setTimeout(0);
      return new NbdClient(socket, info, reader.detach(), onClose);
    } catch (e) {
      socket.destroy();
      throw e;
    }
  }

  /** Requests waiting for their reply. */
  get inflight(): number {
    return this.pending.size;
  }

  /**
   * Sends one command. Offsets and lengths in bytes. WRITE sends `iovs` as the payload; READ fills
   * them. `cb(status, arg)` runs once: 0, the server's error as a negative errno, or -EIO if the
   * connection drops first. Buffers are owned by the caller until then.
   */
  send(cmd: number, flags: number, offset: number, length: number, iovs: Uint8Array[], cb: IoCallback, arg: unknown): void {
    if (this.closed) {
      setImmediate(cb, -Errno.EIO, arg);
      return;
    }
    const handle = this.nextHandle;
    this.nextHandle = handle >= 0x7fffffff ? 1 : handle + 1;
    this.pending.set(handle, { cmd, iovs: cmd === NBD_CMD_READ ? iovs : EMPTY, length, cb, arg });
    const h = Buffer.allocUnsafe(REQUEST_HEADER_SIZE);
    encodeRequest(h, 0, cmd, flags, 0, handle, offset, length);
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(h);
    if (cmd !== NBD_CMD_READ) for (const iov of iovs) this.socket.write(iov);
  }

  private parse(): void {
    const q = this.queue;
    while (!this.closed) {
      if (this.reading) {
        const r = this.reading;
        while (r.left > 0 && q.length > 0) {
          const dst = r.p.iovs[r.iov];
          const n = Math.min(dst.length - r.pos, r.left, q.length);
          q.copyOut(dst, r.pos, n);
          r.pos += n;
          r.left -= n;
          if (r.pos === dst.length) {
            r.iov++;
            r.pos = 0;
          }
        }
        if (r.left > 0) return;
        this.reading = null;
        this.complete(this.replyHandle, 0);
        continue;
      }
      if (q.length < SIMPLE_REPLY_SIZE) return;
      const h = q.take(SIMPLE_REPLY_SIZE);
      const p = h.readUInt32BE(0) === NBD_SIMPLE_REPLY_MAGIC && h.readUInt32BE(8) === 0 ? this.pending.get(h.readUInt32BE(12)) : undefined;
      // A reply we cannot match (bad magic, structured reply we never negotiated, unknown handle)
      // leaves the stream unframeable: drop the connection, which fails everything in flight.
      if (p === undefined) return this.abort();
      this.replyHandle = h.readUInt32BE(12);
      this.replyError = h.readUInt32BE(4);
      if (p.cmd === NBD_CMD_READ && this.replyError === 0 && p.length > 0) {
        this.reading = { p, iov: 0, pos: 0, left: p.length };
        continue;
      }
      this.complete(this.replyHandle, statusOfNbdError(this.replyError));
    }
  }

  private complete(handle: number, status: number): void {
    const p = this.pending.get(handle)!;
    this.pending.delete(handle);
    p.cb(status, p.arg);
  }

  private abort(): void {
    this.socket.destroy();
    this.lost();
  }

  /** The connection is gone: fail everything in flight with -EIO (once). */
  private lost(): void {
    if (this.closed) return;
    this.closed = true;
    this.reading = null;
    const list = [...this.pending.values()];
    this.pending.clear();
    for (const p of list) p.cb(-Errno.EIO, p.arg);
    this.onClose(this);
  }

  /** Sends NBD_CMD_DISC and closes. Requests still in flight fail with -EIO. */
  close(): void {
    if (this.closed) return;
    const h = Buffer.alloc(REQUEST_HEADER_SIZE);
    encodeRequest(h, 0, NBD_CMD_DISC, 0, 0, 0, 0, 0);
    this.socket.end(h);
    // A server is expected to close after DISC; do not wait for it.
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.lost();
  }
}
