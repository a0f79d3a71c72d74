import { CompletionBatch } from '../completion-batch';
import { type Bdev, type BdevChannel, type BdevIo, type BdevModule, type ConfigEntry, type DriverDone, IoType } from '../types';
import { MallocStore } from './malloc-store';

export interface MallocBdevOptions {
  name: string;
  uuid: string;
  numBlocks: number;
  blockSize: number;
  physicalBlockSize: number;
  optimalIoBoundary: number;
}

/** A RAM disk whose data really lives in memory (sparse, chunked). */
export class MallocBdev implements Bdev {
  readonly aliases: string[] = [];
  readonly productName = 'Malloc disk';
  readonly requiredAlignment = 1;
  readonly splitOnOptimalIoBoundary: boolean;
  readonly writeCache = false;
  numBlocks: number;
  readonly store: MallocStore;

  constructor(
    readonly module: BdevModule,
    readonly opts: MallocBdevOptions,
  ) {
    this.numBlocks = opts.numBlocks;
    this.splitOnOptimalIoBoundary = opts.optimalIoBoundary > 0;
    this.store = new MallocStore(opts.numBlocks * opts.blockSize);
  }

  get name() { return this.opts.name; }
  get uuid() { return this.opts.uuid; }
  get blockSize() { return this.opts.blockSize; }
  get optimalIoBoundary() { return this.opts.optimalIoBoundary; }

  ioTypeSupported(type: IoType): boolean {
    return type <= IoType.RESET;
  }

  createChannel(): BdevChannel {
    return new MallocChannel(this);
  }

  async destruct(): Promise<void> {}

  driverSpecific(): Record<string, unknown> {
    return {};
  }

  configEntry(): ConfigEntry {
    const o = this.opts;
    return {
      method: 'bdev_malloc_create',
      params: {
        name: o.name, num_blocks: o.numBlocks, block_size: o.blockSize, physical_block_size: o.physicalBlockSize,
        uuid: o.uuid, optimal_io_boundary: o.optimalIoBoundary, md_size: 0, dif_type: 0,
        dif_is_head_of_md: false, dif_pi_format: 0,
      },
    };
  }
}

class MallocChannel implements BdevChannel {
  private readonly batch = new CompletionBatch();

  constructor(private readonly bdev: MallocBdev) {}

  submit(io: BdevIo, done: DriverDone): void {
    const bs = this.bdev.blockSize;
    const store = this.bdev.store;
    switch (io.type) {
      case IoType.READ: store.read(io.offsetBlocks * bs, io.iovs); break;
      case IoType.WRITE: store.write(io.offsetBlocks * bs, io.iovs); break;
      case IoType.UNMAP:
      case IoType.WRITE_ZEROES: store.zero(io.offsetBlocks * bs, io.numBlocks * bs); break;
      default: break;
    }
    this.batch.add(io, done, 0);
  }

  /** The layer closes a channel only once its I/O drained; completions are already delivered. */
  close(): void {}
}
