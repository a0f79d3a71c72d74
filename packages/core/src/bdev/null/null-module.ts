import { inject, injectable } from 'tsyringe';
import { Tokens } from '../../tokens';
import type { BdevLayer } from '../bdev-layer';
import type { BdevModule } from '../types';
import { NullBdev, type NullBdevOptions } from './null-bdev';
import { nullRpcMethods } from './rpc';

/** The null module: bdevs that complete every I/O at once without storing data. */
@injectable()
export class NullBdevModule implements BdevModule {
  readonly name = 'null';

  constructor(@inject(Tokens.BdevLayer) readonly layer: BdevLayer) {}

  rpcMethods() {
    return nullRpcMethods(this);
  }

  create(opts: NullBdevOptions): NullBdev {
    const bdev = new NullBdev(this, opts);
    this.layer.register(bdev);
    return bdev;
  }

  async delete(name: string): Promise<void> {
    await this.layer.unregister(this.layer.requireOf(name, this).name);
  }

  /** bdev_null_resize: new size in MiB, as SPDK. */
  resize(name: string, newSizeMib: number): void {
    const bdev = this.layer.requireOf(name, this);
    bdev.numBlocks = Math.floor((newSizeMib * 1024 * 1024) / bdev.blockSize);
    this.layer.notifyResize(name);
  }
}
