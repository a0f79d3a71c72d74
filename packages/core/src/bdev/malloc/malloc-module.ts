import { inject, injectable } from 'tsyringe';
import { Tokens } from '../../tokens';
import type { BdevLayer } from '../bdev-layer';
import type { BdevModule } from '../types';
import { MallocBdev, type MallocBdevOptions } from './malloc-bdev';
import { mallocRpcMethods } from './rpc';

/** The malloc module: RAM bdevs created by bdev_malloc_create. */
@injectable()
export class MallocBdevModule implements BdevModule {
  readonly name = 'malloc';
  private nextIndex = 0;

  constructor(@inject(Tokens.BdevLayer) readonly layer: BdevLayer) {}

  rpcMethods() {
    return mallocRpcMethods(this);
  }

  /** SPDK's default naming: Malloc0, Malloc1... skipping names in use. */
  defaultName(): string {
    let name: string;
    do name = `Malloc${this.nextIndex++}`;
    while (this.layer.get(name));
    return name;
  }

  create(opts: MallocBdevOptions): MallocBdev {
    const bdev = new MallocBdev(this, opts);
    this.layer.register(bdev);
    return bdev;
  }

  async delete(name: string): Promise<void> {
    await this.layer.unregister(this.layer.requireOf(name, this).name);
  }
}
