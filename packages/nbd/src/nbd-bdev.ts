import {
  type Bdev, type BdevChannel, type BdevIo, type BdevModule, type ConfigEntry, type DriverDone, Errno, IoType, type Logger,
  sliceIovs,
} from '@blockwork/core';
import type { NbdTarget, NegotiatedExport } from './client-negotiation';
import { NbdClient } from './nbd-client';
import {
  NBD_CMD_FLUSH, NBD_CMD_READ, NBD_CMD_TRIM, NBD_CMD_WRITE, NBD_CMD_WRITE_ZEROES, NBD_FLAG_READ_ONLY, NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_TRIM, NBD_FLAG_SEND_WRITE_ZEROES,
} from './protocol';

/** Connect + negotiation timeout of a reconnect, in ms. */
export const RECONNECT_TIMEOUT_MS = 5000;

const COMMAND_OF: Record<number, number> = {
  [IoType.READ]: NBD_CMD_READ, [IoType.WRITE]: NBD_CMD_WRITE, [IoType.FLUSH]: NBD_CMD_FLUSH,
  [IoType.UNMAP]: NBD_CMD_TRIM, [IoType.WRITE_ZEROES]: NBD_CMD_WRITE_ZEROES,
};

/** One callback for every request: the layer's `done` travels in io.driverCtx, so no closure per I/O. */
function onReply(status: number, arg: unknown): void {
  const io = arg as BdevIo;
  (io.driverCtx as DriverDone)(io, status);
}

/** A bdev I/O split into several requests (larger than the server's maximum). */
interface SplitIo {
  io: BdevIo;
  left: number;
  status: number;
}

function onPart(status: number, arg: unknown): void {
  const s = arg as SplitIo;
  if (status !== 0 && s.status === 0) s.status = status;
  if (--s.left === 0) onReply(s.status, s.io);
}

/**
 * A bdev on an NBD export. I/O types map onto commands by the export's transmission flags: read,
 * write, flush (SEND_FLUSH), unmap → TRIM (SEND_TRIM), write_zeroes (SEND_WRITE_ZEROES). I/O
 * larger than the server's maximum block size goes out as several requests.
 * When the server goes away, I/O in flight fails with -EIO; the next I/O reconnects once, and
 * fails with -ENOTCONN if that does not work. The bdev stays until bdev_nbd_detach.
 */
export class NbdBdev implements Bdev {
  readonly aliases: string[] = [];
  readonly productName = 'NBD disk';
  readonly requiredAlignment = 1;
  readonly splitOnOptimalIoBoundary = false;
  readonly optimalIoBoundary = 0;
  /** Largest request sent, in bytes: the server's maximum block size rounded down to blocks. */
  private readonly maxBytes: number;
  readonly writeCache: boolean;
  numBlocks: number;
  private readonly flags: number;
  private client: NbdClient | null;
  private connecting = false;
  private waiting: Array<{ io: BdevIo; done: DriverDone }> = [];
  private destructed = false;

  constructor(
    readonly name: string,
    readonly uuid: string,
    readonly module: BdevModule,
    readonly blockSize: number,
    readonly target: NbdTarget,
    client: NbdClient,
    private readonly log: Logger,
    private readonly onDestruct: (b: NbdBdev) => void,
  ) {
    const info: NegotiatedExport = client.info;
    this.client = client;
    this.flags = info.flags;
    this.numBlocks = Math.floor(info.size / blockSize);
    this.maxBytes = Math.max(1, Math.floor(info.maxBlock / blockSize)) * blockSize;
    this.writeCache = (info.flags & NBD_FLAG_SEND_FLUSH) !== 0;
  }

  /** Whether a connection to the server is currently up. */
  get connected(): boolean {
    return this.client !== null && !this.client.closed;
  }

  ioTypeSupported(type: IoType): boolean {
    const ro = (this.flags & NBD_FLAG_READ_ONLY) !== 0;
    switch (type) {
      case IoType.READ: return true;
      case IoType.WRITE: return !ro;
      case IoType.FLUSH: return (this.flags & NBD_FLAG_SEND_FLUSH) !== 0;
      case IoType.UNMAP: return !ro && (this.flags & NBD_FLAG_SEND_TRIM) !== 0;
      case IoType.WRITE_ZEROES: return !ro && (this.flags & NBD_FLAG_SEND_WRITE_ZEROES) !== 0;
      default: return false;
    }
  }

  createChannel(): BdevChannel {
    return { submit: (io, done) => this.submit(io, done), close: () => {} };
  }

  private submit(io: BdevIo, done: DriverDone): void {
    const c = this.client;
    if (c !== null && !c.closed) return this.send(c, io, done);
    this.waiting.push({ io, done });
    if (!this.connecting) void this.reconnect();
  }

  private send(c: NbdClient, io: BdevIo, done: DriverDone): void {
    io.driverCtx = done;
    const bs = this.blockSize;
    // Flush of the whole device: NBD's FLUSH has no range (offset and length must be 0).
    if (io.type === IoType.FLUSH) return c.send(NBD_CMD_FLUSH, 0, 0, 0, [], onReply, io);
    const cmd = COMMAND_OF[io.type];
    const bytes = io.numBlocks * bs;
    const off = io.offsetBlocks * bs;
    if (bytes <= this.maxBytes) return c.send(cmd, 0, off, bytes, io.iovs, onReply, io);
    const max = this.maxBytes;
    const split: SplitIo = { io, left: Math.ceil(bytes / max), status: 0 };
    const data = io.type === IoType.READ || io.type === IoType.WRITE;
    for (let pos = 0; pos < bytes; pos += max) {
      const len = Math.min(max, bytes - pos);
      c.send(cmd, 0, off + pos, len, data ? sliceIovs(io.iovs, pos, len) : [], onPart, split);
    }
  }

  private async reconnect(): Promise<void> {
    this.connecting = true;
    let status = 0;
    try {
      const c = await NbdClient.connect(this.target, RECONNECT_TIMEOUT_MS, () => {});
      if (this.destructed) {
        c.close();
        status = -Errno.ENODEV;
      } else if (c.info.size < this.numBlocks * this.blockSize) {
        c.close();
        status = -Errno.EIO;
        this.log.error({ bdev: this.name, size: c.info.size }, 'nbd: export shrank across a reconnect; I/O fails');
      } else {
        this.client = c;
        this.log.info({ bdev: this.name }, 'nbd: reconnected');
      }
    } catch (e) {
      status = -Errno.ENOTCONN;
      this.log.warn({ bdev: this.name, err: (e as Error).message }, 'nbd: reconnect failed; I/O fails with -ENOTCONN');
    }
    this.connecting = false;
    const list = this.waiting;
    this.waiting = [];
    for (const w of list) {
      if (status === 0) this.send(this.client!, w.io, w.done);
      else w.done(w.io, status);
    }
  }

  async destruct(): Promise<void> {
    if (this.destructed) return;
    this.destructed = true;
    this.client?.close();
    this.client = null;
    this.onDestruct(this);
  }

  driverSpecific(): Record<string, unknown> {
    const t = this.target;
    return { nbd: { address: t.address ?? null, port: t.port ?? null, socket: t.socket ?? null, export_name: t.exportName } };
  }

  configEntry(): ConfigEntry {
    const t = this.target;
    const params: Record<string, unknown> = { name: this.name };
    if (t.socket !== undefined) params.socket = t.socket;
    else {
      params.address = t.address ?? '127.0.0.1';
      if (t.port !== undefined) params.port = t.port;
    }
    params.export_name = t.exportName;
    params.block_size = this.blockSize;
    params.uuid = this.uuid;
    return { method: 'bdev_nbd_attach', params };
  }
}
