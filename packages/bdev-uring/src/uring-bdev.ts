import { closeSync } from 'node:fs';
import type { Bdev, BdevChannel, BdevModule, ConfigEntry, Logger } from '@blockwork/core';
import { IoType } from '@blockwork/core';
import { UringChannel, type UringChannelTarget } from './uring-channel';
import { statBacking, type UringFile } from './uring-file';

/**
 * A bdev backed by a regular file or block device, driven through io_uring. Supports read, write,
 * flush (fdatasync), unmap (punch hole) and write_zeroes (zero range, else punch hole).
 */
export class UringBdev implements Bdev, UringChannelTarget {
  readonly aliases: string[] = [];
  readonly productName = 'URING bdev';
  readonly optimalIoBoundary = 0;
  readonly splitOnOptimalIoBoundary = false;
  readonly writeCache = true;
  /** Size in blocks; changed only by `rescan`. */
  numBlocks: number;
  zeroRangeUnsupported = false;
  private destructed = false;

  /**
   * @param file the opened backing file; the bdev owns its fd and closes it in `destruct`.
   * @param blockSizeParam the block_size given at creation (undefined = detected), for configEntry.
   * @param onDestruct called once after destruct, so the module forgets the bdev.
   */
  constructor(
    readonly name: string,
    readonly uuid: string,
    readonly module: BdevModule,
    readonly file: UringFile,
    private readonly blockSizeParam: number | undefined,
    private readonly log: Logger,
    private readonly onDestruct: (bdev: UringBdev) => void = () => {},
  ) {
    this.numBlocks = Math.floor(file.sizeBytes / file.blockSize);
  }

  get blockSize(): number {
    return this.file.blockSize;
  }

  get requiredAlignment(): number {
    return this.file.requiredAlignment;
  }

  get fd(): number {
    return this.file.fd;
  }

  ioTypeSupported(type: IoType): boolean {
    return type !== IoType.RESET;
  }

  createChannel(): BdevChannel {
    return new UringChannel(this);
  }

  onZeroRangeUnsupported(): void {
    this.log.warn({ bdev: this.name, filename: this.file.filename }, 'fallocate ZERO_RANGE unsupported; write_zeroes punches holes instead');
  }

  /** Re-reads the backing size; returns the new size in blocks (the caller notifies the layer). */
  rescan(): number {
    const info = statBacking(this.file.fd, this.file.filename);
    this.numBlocks = Math.floor(info.size / this.blockSize);
    return this.numBlocks;
  }

  async destruct(): Promise<void> {
    if (this.destructed) return;
    this.destructed = true;
    closeSync(this.file.fd);
    this.onDestruct(this);
  }

  driverSpecific(): Record<string, unknown> {
    return { uring: { filename: this.file.filename } };
  }

  configEntry(): ConfigEntry {
    const params: Record<string, unknown> = { name: this.name, filename: this.file.filename };
    // Detected block sizes are written too, so a replay gets the same geometry even if detection changes.
    params.block_size = this.blockSizeParam ?? this.blockSize;
    params.uuid = this.uuid;
    return { method: 'bdev_uring_create', params };
  }
}
