import { CompletionBatch } from '../completion-batch';
import { type Bdev, type BdevChannel, type BdevIo, type BdevModule, type ConfigEntry, type DriverDone, IoType } from '../types';

export interface NullBdevOptions {
  name: string;
  uuid: string;
  numBlocks: number;
  blockSize: number;
  physicalBlockSize: number;
}

/** Discards writes and leaves read buffers untouched, as SPDK's null bdev: a device that costs nothing, for measuring the layers above. */
export class NullBdev implements Bdev {
  readonly aliases: string[] = [];
  readonly productName = 'Null disk';
  readonly requiredAlignment = 1;
  readonly optimalIoBoundary = 0;
  readonly splitOnOptimalIoBoundary = false;
  readonly writeCache = false;
  numBlocks: number;

  constructor(
    readonly module: BdevModule,
    readonly opts: NullBdevOptions,
  ) {
    this.numBlocks = opts.numBlocks;
  }

  get name() { return this.opts.name; }
  get uuid() { return this.opts.uuid; }
  get blockSize() { return this.opts.blockSize; }

  ioTypeSupported(type: IoType): boolean {
    return type === IoType.READ || type === IoType.WRITE || type === IoType.WRITE_ZEROES || type === IoType.RESET;
  }

  createChannel(): BdevChannel {
    const batch = new CompletionBatch();
    return {
      submit: (io: BdevIo, done: DriverDone) => batch.add(io, done, 0),
      close: () => {},
    };
  }

  async destruct(): Promise<void> {}

  driverSpecific(): Record<string, unknown> {
    return {};
  }

  configEntry(): ConfigEntry {
    const o = this.opts;
    return {
      method: 'bdev_null_create',
      params: {
        name: o.name, num_blocks: this.numBlocks, block_size: o.blockSize, physical_block_size: o.physicalBlockSize,
        md_size: 0, dif_type: 0, dif_is_head_of_md: false, dif_pi_format: 0, uuid: o.uuid,
      },
    };
  }
}
