import type { BdevDesc } from '../bdev-layer';
import type { IoChannel } from '../io-channel';
import type { Bdev, BdevChannel, BdevIo, BdevModule, ConfigEntry, DriverDone, IoType } from '../types';

/**
 * A virtual bdev that forwards every I/O to its base bdev, which it claims. It proves that bdevs
 * stack, and is the template for filters (encryption, dirty tracking) that sit in between.
 */
export class PassthruBdev implements Bdev {
  readonly aliases: string[] = [];
  readonly productName = 'passthru';
  readonly writeCache: boolean;
  readonly requiredAlignment: number;
  readonly optimalIoBoundary = 0;
  readonly splitOnOptimalIoBoundary = false;

  constructor(
    readonly module: BdevModule,
    readonly name: string,
    readonly uuid: string,
    readonly baseDesc: BdevDesc,
  ) {
    this.writeCache = baseDesc.bdev.writeCache;
    this.requiredAlignment = baseDesc.bdev.requiredAlignment;
  }

  get base(): Bdev { return this.baseDesc.bdev; }
  get blockSize() { return this.base.blockSize; }
  get numBlocks() { return this.base.numBlocks; }

  ioTypeSupported(type: IoType): boolean {
    return this.base.ioTypeSupported(type);
  }

  createChannel(): BdevChannel {
    return new PassthruChannel(this.baseDesc.getIoChannel());
  }

  async destruct(): Promise<void> {
    this.baseDesc.close();
  }

  driverSpecific(): Record<string, unknown> {
    return { passthru: { name: this.name, base_bdev_name: this.base.name } };
  }

  configEntry(): ConfigEntry {
    return { method: 'bdev_passthru_create', params: { base_bdev_name: this.base.name, name: this.name, uuid: this.uuid } };
  }
}

class PassthruChannel implements BdevChannel {
  /** One function for all I/Os: the original io rides along as the callback argument. */
  private readonly onBaseDone: (status: number, arg: unknown) => void;

  constructor(private readonly base: IoChannel) {
    this.onBaseDone = (status, arg) => {
      const io = arg as BdevIo;
      const done = io.driverCtx as DriverDone;
      io.driverCtx = undefined;
      done(io, status);
    };
  }

  submit(io: BdevIo, done: DriverDone): void {
    io.driverCtx = done;
    this.base.submit(io.type, io.offsetBlocks, io.numBlocks, io.iovs, this.onBaseDone, io);
  }

  close(): void {}
}
