import { type BdevDesc, type BdevLayer, type IoChannel, IoType } from '@blockwork/core';
import {
  NBD_FLAG_CAN_MULTI_CONN, NBD_FLAG_HAS_FLAGS, NBD_FLAG_READ_ONLY, NBD_FLAG_SEND_FLUSH, NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM, NBD_FLAG_SEND_WRITE_ZEROES,
} from './protocol';

/** Something waiting at an export's write gate; `proceed` is called once when it may run. */
export interface GateWaiter {
  proceed(): void;
}

/** What nbd_server_get_exports reports for one export. */
export interface NbdExportInfo {
  name: string;
  bdev_name: string;
  readonly: boolean;
  size: number;
  block_size: number;
  connections: number;
}

/**
 * One bdev served under an export name: the descriptor (write unless read-only), its I/O channel
 * and the connections using it. Also the write gate that makes read-modify-write safe.
 */
export class NbdExport {
  readonly desc: BdevDesc;
  readonly ch: IoChannel;
  /** Connections in the transmission phase on this export; each is closed when the export goes. */
  readonly connections = new Set<{ destroy(): void }>();
  private mutating = 0;
  private exclusive = false;
  private readonly waiting: Array<{ w: GateWaiter; exclusive: boolean }> = [];

  /**
   * @param onRemove called when the bdev is hot-removed (the server then drops the export).
   */
  constructor(
    readonly name: string,
    layer: BdevLayer,
    bdevName: string,
    readonly readonly: boolean,
    onRemove: (e: NbdExport) => void,
  ) {
    this.desc = layer.open(bdevName, !readonly, (ev) => {
      if (ev === 'remove') onRemove(this);
    });
    this.ch = this.desc.getIoChannel();
  }

  get blockSize(): number {
    return this.desc.bdev.blockSize;
  }

  /** Export size in bytes (the bdev's current size). */
  get size(): number {
    return this.desc.bdev.numBlocks * this.desc.bdev.blockSize;
  }

  supports(type: IoType): boolean {
    return this.desc.bdev.ioTypeSupported(type);
  }

  /** Transmission flags for this export, from what the bdev supports. */
  get transmissionFlags(): number {
    let f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_CAN_MULTI_CONN;
    // One IoChannel per bdev is shared by every connection, so a flush covers all of them (MULTI_CONN).
    if (this.supports(IoType.FLUSH)) f |= NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA;
    if (this.readonly) return f | NBD_FLAG_READ_ONLY;
    if (this.supports(IoType.UNMAP)) f |= NBD_FLAG_SEND_TRIM;
    if (this.supports(IoType.WRITE_ZEROES)) f |= NBD_FLAG_SEND_WRITE_ZEROES;
    return f;
  }

  /**
   * The write gate: ordinary writes run side by side; a read-modify-write runs alone, after the
   * writes before it and before the ones after it, so a partial-block update never writes back
   * bytes another write changed in between. Returns true when `w` may run now; otherwise
   * `w.proceed()` is called later. Every successful or deferred enter is paired with `leave`.
   */
  enter(w: GateWaiter, exclusive: boolean): boolean {
    if (this.waiting.length === 0 && !this.exclusive && (!exclusive || this.mutating === 0)) {
      this.admit(exclusive);
      return true;
    }
    this.waiting.push({ w, exclusive });
    return false;
  }

  leave(exclusive: boolean): void {
    if (exclusive) this.exclusive = false;
    else this.mutating--;
    while (this.waiting.length > 0 && !this.exclusive) {
      const next = this.waiting[0];
      if (next.exclusive && this.mutating > 0) break;
      this.waiting.shift();
      this.admit(next.exclusive);
      next.w.proceed();
    }
  }

  private admit(exclusive: boolean): void {
    if (exclusive) this.exclusive = true;
    else this.mutating++;
  }

  info(): NbdExportInfo {
    return {
      name: this.name, bdev_name: this.desc.bdev.name, readonly: this.readonly, size: this.size,
      block_size: this.blockSize, connections: this.connections.size,
    };
  }

  /** Drops every connection and closes the descriptor (I/O already submitted completes). */
  close(): void {
    for (const c of [...this.connections]) c.destroy();
    this.connections.clear();
    this.desc.close();
  }
}
