import type { Bdev, BdevChannel, BdevModule, ConfigEntry } from '@blockwork/core';
import { IoType } from '@blockwork/core';
import { type ImageHandle, rbdAddon } from './native';
import { RbdChannel, type RbdChannelTarget } from './rbd-channel';
import type { RbdConnection } from './rbd-connection';
import type { RbdCreateParams } from './rpc';

/** Where a bdev's image lives and how it was reached; released by the bdev's destruct. */
export interface RbdBacking {
  connection: RbdConnection;
  /** True when the bdev owns the connection (no cluster_name): destruct shuts it down. */
  privateConnection: boolean;
  image: ImageHandle;
  sizeBytes: number;
  writeZeroes: boolean;
}

/**
 * A bdev on a Ceph RBD image through librbd. Supports read, write, flush (rbd flush), unmap
 * (discard) and write_zeroes (rbd write_zeroes, else discard); no reset.
 */
export class RbdBdev implements Bdev, RbdChannelTarget {
  readonly aliases: string[] = [];
  readonly productName = 'Ceph Rbd Disk';
  readonly requiredAlignment = 1;
  readonly optimalIoBoundary = 0;
  readonly splitOnOptimalIoBoundary = false;
  readonly writeCache = true;
  /** Size in blocks; changed only by `resize`. */
  numBlocks: number;
  private destructed = false;

  /**
   * @param params the create call as given (name resolved), replayed by configEntry.
   * @param onDestruct called once after destruct, so the module forgets the bdev.
   */
  constructor(
    readonly name: string,
    readonly uuid: string,
    readonly module: BdevModule,
    readonly params: RbdCreateParams,
    private readonly backing: RbdBacking,
    private readonly onDestruct: (bdev: RbdBdev) => void,
  ) {
    this.numBlocks = Math.floor(backing.sizeBytes / params.block_size);
  }

  get blockSize(): number {
    return this.params.block_size;
  }

  get image(): ImageHandle {
    return this.backing.image;
  }

  get writeZeroes(): boolean {
    return this.backing.writeZeroes;
  }

  get connection(): RbdConnection {
    return this.backing.connection;
  }

  ioTypeSupported(type: IoType): boolean {
    return type !== IoType.RESET;
  }

  createChannel(): BdevChannel {
    return new RbdChannel(this);
  }

  /** Resizes the image to `bytes` and re-reads its size; returns the new size in blocks. */
  async resize(bytes: number): Promise<number> {
    const n = rbdAddon();
    await n.imageResize(this.backing.image, bytes);
    this.numBlocks = Math.floor(n.imageSize(this.backing.image) / this.blockSize);
    return this.numBlocks;
  }

  /** Closes the image (every channel is already closed), releases the pool and a private connection. */
  async destruct(): Promise<void> {
    if (this.destructed) return;
    this.destructed = true;
    try {
      await rbdAddon().imageClose(this.backing.image);
      await this.backing.connection.releaseIoctx(this.params.pool_name);
      if (this.backing.privateConnection) await this.backing.connection.shutdown();
    } finally {
      this.onDestruct(this);
    }
  }

  driverSpecific(): Record<string, unknown> {
    const p = this.params;
    const rbd: Record<string, unknown> = { pool_name: p.pool_name, rbd_name: p.rbd_name };
    if (p.cluster_name !== undefined) rbd.cluster_name = p.cluster_name;
    else {
      if (p.user_id !== undefined) rbd.user_id = p.user_id;
      if (p.config !== undefined) rbd.config = p.config;
    }
    return { rbd };
  }

  configEntry(): ConfigEntry {
    const p: Record<string, unknown> = { ...this.params, name: this.name, uuid: this.uuid };
    return { method: 'bdev_rbd_create', params: p };
  }
}
