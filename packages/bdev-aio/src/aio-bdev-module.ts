import { type BdevLayer, type BdevModule, type Logger, type RpcMethod, Tokens } from '@blockwork/core';
import { inject, injectable } from 'tsyringe';
import { AioBdev, type AioCreateParams } from './aio-bdev';
import { aioError } from './errors';
import { aioRpcMethods } from './rpc';

/** The "aio" bdev module: creates, deletes and rescans AIO bdevs through its RPC methods. */
@injectable()
export class AioBdevModule implements BdevModule {
  readonly name = 'aio';
  private readonly bdevs = new Map<string, AioBdev>();

  constructor(
    @inject(Tokens.BdevLayer) private readonly layer: BdevLayer,
    @inject(Tokens.Logger) private readonly log: Logger,
  ) {}

  rpcMethods(): RpcMethod[] {
    return aioRpcMethods(this);
  }

  /** Opens the file and registers the bdev; returns its name. Throws BDEV_EXISTS or AIO_* errors. */
  create(params: AioCreateParams): string {
    const bdev = AioBdev.open(params, this, this.log);
    try {
      this.layer.register(bdev);
    } catch (e) {
      void bdev.destruct();
      throw e;
    }
    this.bdevs.set(bdev.name, bdev);
    this.log.info({ bdev: bdev.name, filename: bdev.filename, blockSize: bdev.blockSize, numBlocks: bdev.numBlocks,
      direct: bdev.direct }, 'aio bdev created');
    return bdev.name;
  }

  /** Unregisters through the layer (in-flight I/O completes, then channels close and the fd). */
  async delete(name: string): Promise<void> {
    const bdev = this.own(name);
    await this.layer.unregister(bdev.name);
    this.bdevs.delete(bdev.name);
  }

  /** Re-reads the size, updates numBlocks and tells descriptor owners. Returns the new size in blocks. */
  rescan(name: string): number {
    const bdev = this.own(name);
    const before = bdev.numBlocks;
    const after = bdev.rescan();
    if (after !== before) {
      this.log.info({ bdev: bdev.name, before, after }, 'aio bdev resized');
      this.layer.notifyResize(bdev.name);
    }
    return after;
  }

  /** The aio bdevs this module created, by name. */
  list(): AioBdev[] {
    return [...this.bdevs.values()];
  }

  private own(name: string): AioBdev {
    const b = this.layer.require(name);
    const mine = this.bdevs.get(b.name);
    if (mine !== b) throw aioError('AIO_NOT_AIO_BDEV', `bdev '${name}' is not an aio bdev`);
    return mine;
  }
}
